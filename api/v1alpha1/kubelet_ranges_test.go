package v1alpha1

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestKubeletConfigRanges: a kubeletConfig that decodes but that the kubelet
// would refuse (pkg/kubelet/apis/config/validation's rules, checked on the
// config merged over provision's settings and the kubelet's defaults) is
// refused at kubeletConfig.<field>, naming the allowed range; one error per case.
func TestKubeletConfigRanges(t *testing.T) {
	tests := []struct{ cfg, field, msg string }{
		{"imageGCHighThresholdPercent: 80", "imageGCHighThresholdPercent", "imageGCLowThresholdPercent (80) must be less than imageGCHighThresholdPercent (80; the kubelet's defaults are 80 and 85)"},
		{"imageGCLowThresholdPercent: 85", "imageGCLowThresholdPercent", "(85) must be less than imageGCHighThresholdPercent (85"},
		{"{imageGCHighThresholdPercent: 60, imageGCLowThresholdPercent: 70}", "imageGCLowThresholdPercent", "(70) must be less than imageGCHighThresholdPercent (60"},
		{"{imageGCHighThresholdPercent: 101}", "imageGCHighThresholdPercent", "must be between 0 and 100, got 101"},
		{"{imageGCLowThresholdPercent: -1}", "imageGCLowThresholdPercent", "must be between 0 and 100, got -1"},
		{"{imageMinimumGCAge: -1m}", "imageMinimumGCAge", "must not be negative"},
		{"{imageMaximumGCAge: 1m}", "imageMaximumGCAge", "must be 0 (off) or greater than imageMinimumGCAge (2m0s), got 1m0s"},
		{"{maxPods: -1}", "maxPods", "must be 0 or more, got -1"},
		{"{podsPerCore: -2}", "podsPerCore", "must be 0 or more, got -2"},
		{"{maxOpenFiles: -1}", "maxOpenFiles", "must be 0 or more"},
		{"{eventRecordQPS: -1}", "eventRecordQPS", "must be 0 or more, got -1"},
		{"{eventBurst: -1}", "eventBurst", "must be 0 or more"},
		{"{registryPullQPS: -5}", "registryPullQPS", "must be 0 or more, got -5"},
		{"{registryBurst: -1}", "registryBurst", "must be 0 or more"},
		{"{kubeAPIQPS: -1}", "kubeAPIQPS", "must be 0 or more"},
		{"{kubeAPIBurst: -1}", "kubeAPIBurst", "must be 0 or more"},
		{"{nodeStatusMaxImages: -2}", "nodeStatusMaxImages", "must be -1 or more, got -2"},
		{"{nodeLeaseDurationSeconds: -1}", "nodeLeaseDurationSeconds", "must be 1 or more"},
		{"{oomScoreAdj: 1001}", "oomScoreAdj", "must be between -1000 and 1000, got 1001"},
		{"{containerLogMaxFiles: 1}", "containerLogMaxFiles", "must be 2 or more, got 1"},
		{"{containerLogMaxWorkers: 0}", "containerLogMaxWorkers", "must be 1 or more, got 0"},
		{"{containerLogMaxSize: 10XB}", "containerLogMaxSize", `must be a positive quantity such as 10Mi, got "10XB"`},
		{"{containerLogMaxSize: \"-1Mi\"}", "containerLogMaxSize", "must be a positive quantity"},
		{"{cpuCFSQuotaPeriod: 50ms}", "cpuCFSQuotaPeriod", "other than 100ms needs featureGates.CustomCPUCFSQuotaPeriod: true, got 50ms"},
		{"{cpuCFSQuotaPeriod: 2s, featureGates: {CustomCPUCFSQuotaPeriod: true}}", "cpuCFSQuotaPeriod", "must be between 1ms and 1s, got 2s"},
		{"{shutdownGracePeriod: 500ms}", "shutdownGracePeriod", "must be 0 (off) or at least 1s, got 500ms"},
		{"{shutdownGracePeriod: 30s, shutdownGracePeriodCriticalPods: 60s}", "shutdownGracePeriodCriticalPods", "(1m0s) must not be longer than shutdownGracePeriod (30s)"},
		{"{shutdownGracePeriodCriticalPods: 10s}", "shutdownGracePeriodCriticalPods", "must not be longer than shutdownGracePeriod (0s)"},
		{"{maxParallelImagePulls: 0}", "maxParallelImagePulls", "must be at least 1, got 0"},
		{"{maxParallelImagePulls: 5}", "maxParallelImagePulls", "above 1 needs serializeImagePulls: false, got 5"},
		{"{memoryThrottlingFactor: 1.5}", "memoryThrottlingFactor", "must be greater than 0 and at most 1.0, got 1.5"},
		{"{topologyManagerPolicy: numa}", "topologyManagerPolicy", `must be one of none, best-effort, restricted, single-numa-node, got "numa"`},
		{"{topologyManagerScope: node}", "topologyManagerScope", "must be one of container, pod"},
		{"{hairpinMode: bridge}", "hairpinMode", "must be one of promiscuous-bridge, hairpin-veth, none"},
		{"{evictionHard: {memory.available: \"0\"}}", "evictionHard[memory.available]", "a positive quantity such as 100Mi"},
		{"{evictionHard: {nodefs.available: 110%}}", "evictionHard[nodefs.available]", "must be a percentage between 0% and 100% or a positive quantity"},
		{"{evictionHard: {disk.available: 10%}}", "evictionHard[disk.available]", `unknown eviction signal "disk.available"`},
		{"{evictionSoft: {memory.available: 1Gi}}", "evictionSoftGracePeriod[memory.available]", "is required for evictionSoft[memory.available]"},
		{"{evictionSoft: {memory.available: 1Gi}, evictionSoftGracePeriod: {memory.available: soon}}", "evictionSoftGracePeriod[memory.available]", `must be a duration of 0 or more such as 1m30s, got "soon"`},
		{"{kubeReserved: {memory: -1Gi}}", "kubeReserved[memory]", `must be a quantity of 0 or more such as 100m or 256Mi, got "-1Gi"`},
		{"{systemReserved: {gpu: \"1\"}}", "systemReserved[gpu]", `unknown resource "gpu"`},
	}
	for _, tt := range tests {
		t.Run(tt.cfg, func(t *testing.T) {
			var cfg map[string]any
			if err := yaml.Unmarshal([]byte(tt.cfg), &cfg); err != nil {
				t.Fatal(err)
			}
			es := validateKubeletConfig("", "v1.37.2", cfg)
			if len(es) != 1 || es[0].Field != "kubeletConfig."+tt.field || !strings.Contains(es[0].Message, tt.msg) {
				t.Fatalf("got %v\nwant one error at kubeletConfig.%s containing %q", es, tt.field, tt.msg)
			}
		})
	}
}

// TestKubeletConfigRangesAccepted: values at the edges of the kubelet's
// ranges, and the merge (null removes one of provision's eviction signals).
func TestKubeletConfigRangesAccepted(t *testing.T) {
	for _, doc := range []string{
		"{imageGCHighThresholdPercent: 100, imageGCLowThresholdPercent: 0}",
		"{imageGCHighThresholdPercent: 90, imageGCLowThresholdPercent: 85}",
		"{maxPods: 0, podsPerCore: 0, nodeStatusMaxImages: -1, registryPullQPS: 0, eventRecordQPS: 0}",
		"{containerLogMaxFiles: 2, containerLogMaxSize: 50Mi}",
		"{shutdownGracePeriod: 30s, shutdownGracePeriodCriticalPods: 10s}",
		"{shutdownGracePeriod: 1s, shutdownGracePeriodCriticalPods: 1s}",
		"{cpuCFSQuotaPeriod: 100ms}",
		"{cpuCFSQuotaPeriod: 1ms, featureGates: {CustomCPUCFSQuotaPeriod: true}}",
		"{maxParallelImagePulls: 5, serializeImagePulls: false}",
		"{evictionHard: {memory.available: 500Mi, nodefs.available: 0%, imagefs.available: null}}",
		"{evictionSoft: {memory.available: 10.5%}, evictionSoftGracePeriod: {memory.available: 1m30s}}",
		"{kubeReserved: {cpu: \"0\", pid: \"1000\", hugepages-2Mi: \"0\"}, systemReserved: null}",
		"{topologyManagerPolicy: single-numa-node, topologyManagerScope: pod, hairpinMode: hairpin-veth, memoryThrottlingFactor: 1}",
	} {
		var cfg map[string]any
		if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
			t.Fatal(err)
		}
		if es := validateKubeletConfig("", "v1.37.2", cfg); len(es) > 0 {
			t.Errorf("%s: %v", doc, es)
		}
	}
}
