package v1alpha1

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/provision-dev/provision/api/validation"
)

// The KubeletConfiguration settings provision renders itself that a
// kubeletConfig merges over (node's renderKubeletConfig uses these): objects
// merge key by key, so a kubeletConfig's evictionHard adds to these signals.
var (
	DefaultEvictionHard   = map[string]string{"memory.available": "100Mi", "nodefs.available": "10%", "nodefs.inodesFree": "5%", "imagefs.available": "15%"}
	DefaultKubeReserved   = map[string]string{"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "1Gi"}
	DefaultSystemReserved = map[string]string{"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"}
)

// MergeJSON merges patch over base as a JSON merge patch (RFC 7386) does:
// objects key by key, recursively; a null removes the key; any other value
// replaces. Neither argument is changed. It is how a kubeletConfig is merged
// over provision's KubeletConfiguration.
func MergeJSON(base, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	b, _ := base.(map[string]any)
	out := make(map[string]any, len(b)+len(p))
	maps.Copy(out, b)
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = MergeJSON(out[k], v)
	}
	return out
}

// kubeletDefaults are the kubelet's own defaults (its v1beta1 SetDefaults) for
// the fields kubeletRules check, applied where the merged config leaves them
// unset, as the kubelet does before it validates.
func kubeletDefaults(kc *kubeletv1beta1.KubeletConfiguration) {
	i32 := func(p **int32, v int32) {
		if *p == nil {
			*p = &v
		}
	}
	i32(&kc.ImageGCHighThresholdPercent, 85)
	i32(&kc.ImageGCLowThresholdPercent, 80)
	i32(&kc.ContainerLogMaxFiles, 5)
	i32(&kc.ContainerLogMaxWorkers, 1)
	i32(&kc.NodeStatusMaxImages, 50)
	i32(&kc.OOMScoreAdj, -999)
	i32(&kc.EventRecordQPS, 50)
	i32(&kc.RegistryPullQPS, 5)
	i32(&kc.KubeAPIQPS, 50)
	if kc.ContainerLogMaxSize == "" {
		kc.ContainerLogMaxSize = "10Mi"
	}
	if kc.CPUCFSQuotaPeriod == nil {
		kc.CPUCFSQuotaPeriod = &metav1.Duration{Duration: 100 * time.Millisecond}
	}
	if kc.NodeLeaseDurationSeconds == 0 {
		kc.NodeLeaseDurationSeconds = 40
	}
	if kc.ImageMinimumGCAge.Duration == 0 {
		kc.ImageMinimumGCAge.Duration = 2 * time.Minute
	}
	if kc.SerializeImagePulls == nil {
		t := true
		kc.SerializeImagePulls = &t
	}
}

// kubeletRule is one of the kubelet's own configuration checks
// (pkg/kubelet/apis/config/validation, eviction and log-manager parsing),
// re-implemented: fields are the kubeletConfig fields the rule reads (an error
// is reported at the first one the kubeletConfig sets, else the first); check
// returns the problem with the allowed range, or "".
type kubeletRule struct {
	fields string // space-separated
	check  func(kc *K) string
}

// kubeletRules are checked on the merged config (provision's settings, the
// kubeletConfig over them, the kubelet's defaults for the rest), so a value
// that only clashes with a default (imageGCLowThresholdPercent: 85 against the
// high default 85) is caught at generate time, not by a kubelet that will not start.
var kubeletRules = []kubeletRule{
	{"imageGCHighThresholdPercent", func(kc *K) string { return between(*kc.ImageGCHighThresholdPercent, 0, 100) }},
	{"imageGCLowThresholdPercent", func(kc *K) string { return between(*kc.ImageGCLowThresholdPercent, 0, 100) }},
	{"imageGCLowThresholdPercent imageGCHighThresholdPercent", func(kc *K) string {
		lo, hi := *kc.ImageGCLowThresholdPercent, *kc.ImageGCHighThresholdPercent
		return cond(lo < hi, "imageGCLowThresholdPercent (%d) must be less than imageGCHighThresholdPercent (%d; the kubelet's defaults are 80 and 85)", lo, hi)
	}},
	{"imageMinimumGCAge", func(kc *K) string {
		return cond(kc.ImageMinimumGCAge.Duration >= 0, "must not be negative, got %v", kc.ImageMinimumGCAge.Duration)
	}},
	{"imageMaximumGCAge imageMinimumGCAge", func(kc *K) string {
		d := kc.ImageMaximumGCAge.Duration
		return cond(d == 0 || d > kc.ImageMinimumGCAge.Duration, "must be 0 (off) or greater than imageMinimumGCAge (%v), got %v", kc.ImageMinimumGCAge.Duration, d)
	}},
	{"maxPods", func(kc *K) string { return atLeast(int64(kc.MaxPods), 0) }},
	{"podsPerCore", func(kc *K) string { return atLeast(int64(kc.PodsPerCore), 0) }},
	{"maxOpenFiles", func(kc *K) string { return atLeast(kc.MaxOpenFiles, 0) }},
	{"eventRecordQPS", func(kc *K) string { return atLeast(int64(*kc.EventRecordQPS), 0) }},
	{"eventBurst", func(kc *K) string { return atLeast(int64(kc.EventBurst), 0) }},
	{"registryPullQPS", func(kc *K) string { return atLeast(int64(*kc.RegistryPullQPS), 0) }},
	{"registryBurst", func(kc *K) string { return atLeast(int64(kc.RegistryBurst), 0) }},
	{"kubeAPIQPS", func(kc *K) string { return atLeast(int64(*kc.KubeAPIQPS), 0) }},
	{"kubeAPIBurst", func(kc *K) string { return atLeast(int64(kc.KubeAPIBurst), 0) }},
	{"nodeStatusMaxImages", func(kc *K) string { return atLeast(int64(*kc.NodeStatusMaxImages), -1) }},
	{"nodeLeaseDurationSeconds", func(kc *K) string { return atLeast(int64(kc.NodeLeaseDurationSeconds), 1) }},
	{"oomScoreAdj", func(kc *K) string { return between(*kc.OOMScoreAdj, -1000, 1000) }},
	{"containerLogMaxFiles", func(kc *K) string { return atLeast(int64(*kc.ContainerLogMaxFiles), 2) }},
	{"containerLogMaxWorkers", func(kc *K) string { return atLeast(int64(*kc.ContainerLogMaxWorkers), 1) }},
	{"containerLogMaxSize", func(kc *K) string { return positiveQuantity(kc.ContainerLogMaxSize, "10Mi") }},
	{"cpuCFSQuotaPeriod", func(kc *K) string {
		d := kc.CPUCFSQuotaPeriod.Duration
		if d == 100*time.Millisecond {
			return ""
		}
		if !kc.FeatureGates["CustomCPUCFSQuotaPeriod"] {
			return fmt.Sprintf("other than 100ms needs featureGates.CustomCPUCFSQuotaPeriod: true, got %v", d)
		}
		return cond(d >= time.Millisecond && d <= time.Second, "must be between 1ms and 1s, got %v", d)
	}},
	{"shutdownGracePeriod", func(kc *K) string { return graceful(kc.ShutdownGracePeriod.Duration) }},
	{"shutdownGracePeriodCriticalPods", func(kc *K) string { return graceful(kc.ShutdownGracePeriodCriticalPods.Duration) }},
	{"shutdownGracePeriodCriticalPods shutdownGracePeriod", func(kc *K) string {
		c, g := kc.ShutdownGracePeriodCriticalPods.Duration, kc.ShutdownGracePeriod.Duration
		return cond(c <= g, "shutdownGracePeriodCriticalPods (%v) must not be longer than shutdownGracePeriod (%v)", c, g)
	}},
	{"maxParallelImagePulls serializeImagePulls", func(kc *K) string {
		n := kc.MaxParallelImagePulls
		switch {
		case n == nil:
			return ""
		case *n < 1:
			return fmt.Sprintf("must be at least 1, got %d", *n)
		}
		return cond(*n == 1 || !*kc.SerializeImagePulls, "above 1 needs serializeImagePulls: false, got %d", *n)
	}},
	{"memoryThrottlingFactor", func(kc *K) string {
		f := kc.MemoryThrottlingFactor
		return cond(f == nil || *f > 0 && *f <= 1, "must be greater than 0 and at most 1.0, got %v", deref(f))
	}},
	{"topologyManagerPolicy", func(kc *K) string {
		return oneOf(kc.TopologyManagerPolicy, "", "none", "best-effort", "restricted", "single-numa-node")
	}},
	{"topologyManagerScope", func(kc *K) string { return oneOf(kc.TopologyManagerScope, "", "container", "pod") }},
	{"hairpinMode", func(kc *K) string { return oneOf(kc.HairpinMode, "", "promiscuous-bridge", "hairpin-veth", "none") }},
}

// K is the kubelet's configuration type, short for the rule table.
type K = kubeletv1beta1.KubeletConfiguration

// evictionSignals are the signals the kubelet's eviction thresholds accept.
var evictionSignals = []string{"allocatableMemory.available", "containerfs.available", "containerfs.inodesFree",
	"imagefs.available", "imagefs.inodesFree", "memory.available", "nodefs.available", "nodefs.inodesFree", "pid.available"}

// reservedResources are the resources kubeReserved and systemReserved take
// (besides hugepages-<size>).
var reservedResources = []string{"cpu", "ephemeral-storage", "memory", "pid"}

// validateKubeletRanges checks cfg, a kubeletConfig that decodes strictly,
// merged over provision's settings, against kubeletRules and the eviction and
// reservation maps' own rules; each error is at kp.<field>.
func validateKubeletRanges(kp validation.Path, cfg map[string]any) validation.Errors {
	var es validation.Errors
	base := map[string]any{"evictionHard": anyMap(DefaultEvictionHard), "kubeReserved": anyMap(DefaultKubeReserved), "systemReserved": anyMap(DefaultSystemReserved)}
	data, err := json.Marshal(MergeJSON(base, cfg))
	if err != nil {
		return nil // cfg marshalled before: cannot happen
	}
	var kc K
	if err := json.Unmarshal(data, &kc); err != nil {
		return nil // DecodeKubeletConfig reported it
	}
	kubeletDefaults(&kc)
	for _, r := range kubeletRules {
		if msg := r.check(&kc); msg != "" {
			fields := strings.Fields(r.fields)
			at := fields[0]
			if i := slices.IndexFunc(fields, func(f string) bool { _, ok := cfg[f]; return ok }); i >= 0 {
				at = fields[i]
			}
			es.Add(kp.Child(at), "%s (the kubelet refuses to start otherwise)", msg)
		}
	}
	es.Append(evictionThresholds(kp.Child("evictionHard"), kc.EvictionHard))
	es.Append(evictionThresholds(kp.Child("evictionSoft"), kc.EvictionSoft))
	for _, sig := range slices.Sorted(maps.Keys(kc.EvictionSoft)) {
		if _, ok := kc.EvictionSoftGracePeriod[sig]; !ok {
			es.Add(kp.Child("evictionSoftGracePeriod").Key(sig), "is required for evictionSoft[%s] (a grace period such as 1m30s)", sig)
		}
	}
	for sig, d := range kc.EvictionSoftGracePeriod {
		if v, err := time.ParseDuration(d); err != nil || v < 0 {
			es.Add(kp.Child("evictionSoftGracePeriod").Key(sig), "must be a duration of 0 or more such as 1m30s, got %s", validation.Quote(d))
		}
	}
	es.Append(reserved(kp.Child("kubeReserved"), kc.KubeReserved))
	es.Append(reserved(kp.Child("systemReserved"), kc.SystemReserved))
	return es
}

// evictionThresholds checks eviction thresholds as the kubelet parses them:
// a known signal, and a percentage 0-100% or a positive quantity.
func evictionThresholds(p validation.Path, m map[string]string) validation.Errors {
	var es validation.Errors
	for _, sig := range slices.Sorted(maps.Keys(m)) {
		v, fp := m[sig], p.Key(sig)
		if !slices.Contains(evictionSignals, sig) {
			es.Add(fp, "unknown eviction signal %s (one of %s)", validation.Quote(sig), strings.Join(evictionSignals, ", "))
			continue
		}
		if pct, ok := strings.CutSuffix(v, "%"); ok {
			if f, err := strconv.ParseFloat(pct, 64); err != nil || f < 0 || f > 100 {
				es.Add(fp, "must be a percentage between 0%% and 100%% or a positive quantity such as 100Mi, got %s", validation.Quote(v))
			}
			continue
		}
		es.Check(fp, positiveQuantity(v, "100Mi"))
	}
	return es
}

// reserved checks kubeReserved/systemReserved: cpu, memory,
// ephemeral-storage, pid or hugepages-<size>, each a quantity of 0 or more.
func reserved(p validation.Path, m map[string]string) validation.Errors {
	var es validation.Errors
	for _, name := range slices.Sorted(maps.Keys(m)) {
		fp := p.Key(name)
		if !slices.Contains(reservedResources, name) && !strings.HasPrefix(name, "hugepages-") {
			es.Add(fp, "unknown resource %s (one of %s, or hugepages-<size>)", validation.Quote(name), strings.Join(reservedResources, ", "))
			continue
		}
		q, err := resource.ParseQuantity(m[name])
		if err != nil || q.Sign() < 0 {
			es.Add(fp, "must be a quantity of 0 or more such as 100m or 256Mi, got %s", validation.Quote(m[name]))
		}
	}
	return es
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func between(v, lo, hi int32) string {
	return cond(v >= lo && v <= hi, "must be between %d and %d, got %d", lo, hi, v)
}

func atLeast(v, lo int64) string { return cond(v >= lo, "must be %d or more, got %d", lo, v) }

// graceful is the shutdown grace periods' rule: 0 (off) or at least 1s.
func graceful(d time.Duration) string {
	return cond(d == 0 || d >= time.Second, "must be 0 (off) or at least 1s, got %v", d)
}

func positiveQuantity(v, example string) string {
	q, err := resource.ParseQuantity(v)
	return cond(err == nil && q.Sign() > 0, "must be a positive quantity such as %s, got %s", example, validation.Quote(v))
}

func oneOf(v string, allowed ...string) string {
	return cond(slices.Contains(allowed, v), "must be one of %s, got %s", strings.Join(allowed[1:], ", "), validation.Quote(v))
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// cond is "" when ok, else the formatted problem.
func cond(ok bool, format string, a ...any) string {
	if ok {
		return ""
	}
	return fmt.Sprintf(format, a...)
}
