package node

import (
	"strings"
	"testing"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/osprofiles"
)

// FuzzKubeletSettings feeds arbitrary kubelet settings (node.yaml's
// kubernetes section: clusterDNS, nodeLabels, taints, serverTLSBootstrap,
// kubeletConfig, kubeletExtraArgs, ...). Properties: no panic; settings that
// validate render a KubeletConfiguration that decodes strictly with the
// kubelet's types and contains every override's top-level field the kubelet
// minor has, and a kubelet drop-in with exactly one command line (no value
// breaks out of its ExecStart argument).
//
//	go test ./node -run '^$' -fuzz FuzzKubeletSettings -fuzztime 60s
func FuzzKubeletSettings(f *testing.F) {
	f.Add([]byte("version: v1.37.2\nclusterDNS: [10.96.0.10]\nnodeLabels: {example.com/pool: gpu}\ntaints: [\"a=b:NoSchedule\"]\n" +
		"kubeletConfig: {maxPods: 50, evictionHard: {memory.available: 500Mi}, systemReserved: null, featureGates: {A: true}}\n" +
		"kubeletExtraArgs: {provider-id: \"openstack:///x\", v: \"2\"}\n"))
	f.Add([]byte("version: v1.22.17\ntaints: [\"k:NoExecute\", \"k=v:NoSchedule\"]\nserverTLSBootstrap: true\n"))
	f.Add([]byte("version: v1.36.3\nkubeletConfig: {defaultPodSysctls: {}}\n"))
	f.Add([]byte("version: v1.37.2\nkubeletConfig: {logging: {format: json, flushFrequency: 5s}, kind: KubeletConfiguration}\n"))
	f.Add([]byte("version: v1.37.2\nkubeletExtraArgs: {hostname-override: \"a\\\"$%\\\\b\"}\n"))
	f.Add([]byte("version: v1.37.2\nkubeletConfig: {evictionHard: null, kubeReserved: {cpu: 1}}\n"))
	// The kubelet's own ranges, checked on the merged config (v1alpha1's kubeletRules).
	f.Add([]byte("version: v1.37.2\nkubeletConfig: {imageGCHighThresholdPercent: 80}\n"))
	f.Add([]byte("version: v1.37.2\nkubeletConfig: {imageGCHighThresholdPercent: 100, imageGCLowThresholdPercent: 0, nodeStatusMaxImages: -1}\n"))
	f.Add([]byte("version: v1.37.2\nkubeletConfig: {shutdownGracePeriod: 30s, shutdownGracePeriodCriticalPods: 60s, containerLogMaxFiles: 1}\n"))
	f.Add([]byte("version: v1.37.2\nkubeletConfig: {evictionHard: {memory.available: \"0\", nodefs.available: 101%}, evictionSoft: {memory.available: 1Gi}}\n"))
	f.Add([]byte("version: v1.37.2\nkubeletConfig: {cpuCFSQuotaPeriod: 2s, featureGates: {CustomCPUCFSQuotaPeriod: true}, maxParallelImagePulls: 3, serializeImagePulls: false}\n"))
	f.Add([]byte("version: v1.30.14\nkubeletConfig: {containerLogMaxSize: 0, kubeReserved: {memory: \"-1Gi\"}, maxPods: -1, registryPullQPS: -1}\n"))
	debian12, err := osprofiles.Get("debian-12")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var k v1alpha1.Kubernetes
		if err := yaml.UnmarshalStrict(data, &k); err != nil {
			return
		}
		k.SetDefaults()
		if es := k.Validate("kubernetes"); len(es) > 0 {
			for _, e := range es {
				if e.Field == "" || e.Message == "" {
					t.Fatalf("error names no field: %+v", e)
				}
			}
			return
		}
		r := kubeversions.MustFor(k.Version)
		out, err := renderKubeletConfig(k, r, "")
		if err != nil {
			t.Fatalf("valid settings do not render: %v", err)
		}
		var cfg kubeletv1beta1.KubeletConfiguration
		if err := yaml.UnmarshalStrict(out, &cfg); err != nil {
			t.Fatalf("rendered config does not decode strictly: %v\n%s", err, out)
		}
		var fields map[string]any
		if err := yaml.Unmarshal(out, &fields); err != nil {
			t.Fatal(err)
		}
		for name, v := range k.KubeletConfig {
			if _, ok := fields[name]; !ok && v != nil && name != "apiVersion" && name != "kind" {
				t.Fatalf("override %s missing from\n%s", name, out)
			}
		}
		n := &Node{Config: v1alpha1.NodeConfig{Kubernetes: k}, Profile: debian12}
		dropIn := string(n.kubeletDropIn())
		if lines := strings.Split(strings.TrimRight(dropIn, "\n"), "\n"); len(lines) != 4 || strings.Count(dropIn, "ExecStart=") != 2 {
			t.Fatalf("drop-in is not two ExecStart lines:\n%s", dropIn)
		}
	})
}
