package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	kubeletapis "k8s.io/kubelet/pkg/apis"
)

// LabelKey checks a node label key as Kubernetes does (a qualified name:
// [prefix/]name, the prefix a DNS subdomain, the name at most 63 characters of
// [A-Za-z0-9-_.] starting and ending alphanumeric), and that the kubelet may
// set it on its own Node: the NodeRestriction admission plugin refuses, and
// the kubelet (1.16+) does not start with, kubernetes.io/ and k8s.io/ labels
// other than its own (k8s.io/kubelet/pkg/apis IsKubeletLabel).
func LabelKey(k string) string {
	if errs := k8svalidation.IsQualifiedName(k); len(errs) > 0 {
		return fmt.Sprintf("label key %s is invalid: %s", Quote(k), strings.Join(errs, "; "))
	}
	ns, _, ok := strings.Cut(k, "/")
	if !ok || kubeletapis.IsKubeletLabel(k) || !restrictedLabelNamespace(ns) {
		return ""
	}
	if ns == "node-role.kubernetes.io" || strings.HasSuffix(ns, ".node-role.kubernetes.io") {
		return fmt.Sprintf("label key %s: a kubelet may not set node-role.kubernetes.io/ labels on its own Node "+
			"(the NodeRestriction admission plugin refuses them, and the kubelet does not start with them); "+
			"label the Node after it joins (kubectl label node NAME %s=), or use a key of your own prefix such as example.com/role",
			Quote(k), k)
	}
	return fmt.Sprintf("label key %s is in the kubernetes.io/k8s.io namespace, where a kubelet may set only its own labels on its Node "+
		"(%s, or keys under the kubelet.kubernetes.io/ and node.kubernetes.io/ prefixes); the NodeRestriction admission plugin refuses the others "+
		"and the kubelet does not start with them: use a key of your own prefix such as example.com/pool",
		Quote(k), strings.Join(kubeletapis.KubeletLabels(), ", "))
}

// restrictedLabelNamespace reports whether a label prefix is kubernetes.io's or k8s.io's.
func restrictedLabelNamespace(ns string) bool {
	for _, d := range []string{"kubernetes.io", "k8s.io"} {
		if ns == d || strings.HasSuffix(ns, "."+d) {
			return true
		}
	}
	return false
}

// LabelValue checks a label value as Kubernetes does: empty, or at most 63
// characters of [A-Za-z0-9-_.] starting and ending alphanumeric.
func LabelValue(v string) string {
	if errs := k8svalidation.IsValidLabelValue(v); len(errs) > 0 {
		return fmt.Sprintf("label value %s is invalid: %s", Quote(v), strings.Join(errs, "; "))
	}
	return ""
}

// TaintEffects are the effects a taint may have.
var TaintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

const taintForm = "must be key=value:Effect or key:Effect (key a qualified name such as example.com/dedicated, value a label value, Effect one of NoSchedule, PreferNoSchedule, NoExecute)"

// ParseTaint parses a taint written as kubectl taint writes it,
// key=value:Effect or key:Effect, checked as Kubernetes checks a Node's taints.
// On a bad taint it returns the message (naming the allowed form).
func ParseTaint(s string) (corev1.Taint, string) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return corev1.Taint{}, taintForm + ", got " + Quote(s)
	}
	kv, effect := s[:i], corev1.TaintEffect(s[i+1:])
	key, value, _ := strings.Cut(kv, "=")
	t := corev1.Taint{Key: key, Value: value, Effect: effect}
	if errs := k8svalidation.IsQualifiedName(key); len(errs) > 0 {
		return corev1.Taint{}, fmt.Sprintf("%s, got %s: key: %s", taintForm, Quote(s), strings.Join(errs, "; "))
	}
	if errs := k8svalidation.IsValidLabelValue(value); len(errs) > 0 {
		return corev1.Taint{}, fmt.Sprintf("%s, got %s: value: %s", taintForm, Quote(s), strings.Join(errs, "; "))
	}
	for _, e := range TaintEffects {
		if effect == e {
			return t, ""
		}
	}
	return corev1.Taint{}, fmt.Sprintf("%s, got %s: unknown effect %s", taintForm, Quote(s), Quote(string(effect)))
}

// Taint checks a taint (see ParseTaint).
func Taint(s string) string {
	_, msg := ParseTaint(s)
	return msg
}
