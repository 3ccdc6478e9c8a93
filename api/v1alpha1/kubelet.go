package v1alpha1

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	sigsjson "sigs.k8s.io/json"

	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/kubeversions"
)

// KubeletConfiguration's apiVersion and kind, the only ones a kubeletConfig may name.
const (
	KubeletConfigAPIVersion = "kubelet.config.k8s.io/v1beta1"
	KubeletConfigKind       = "KubeletConfiguration"
)

// ownedKubeletConfigFields are the KubeletConfiguration fields provision sets
// itself and a kubeletConfig may not override, with the reason.
var ownedKubeletConfigFields = map[string]string{
	"authentication": "provision owns the kubelet API's authentication (client certificates of the cluster CA, webhook tokens, anonymous off): " +
		"changing it can open port 10250, and exec into every pod, to whoever reaches the node",
	"authorization": "provision owns the kubelet API's authorization (Webhook: the API server decides): " +
		"AlwaysAllow would let any authenticated client exec into every pod",
	"cgroupDriver": "provision sets systemd, the driver it configures containerd with (SystemdCgroup = true): " +
		"a kubelet on another driver than its runtime cannot start pods",
	"containerRuntimeEndpoint": "provision installs containerd and points the kubelet at its socket",
	"healthzBindAddress":       "provision's join and health checks poll the kubelet at http://127.0.0.1:10248/healthz",
	"healthzPort":              "provision's join and health checks poll the kubelet at http://127.0.0.1:10248/healthz",
	"rotateCertificates": "the client certificate of the TLS bootstrap must rotate, or the node drops out of the cluster " +
		"when it expires",
	"serverTLSBootstrap": "set it with serverTLSBootstrap (and approve the serving CSRs)",
	"clusterDNS":         "set it with clusterDNS (--cluster-dns)",
	"clusterDomain":      "set it with clusterDomain (--cluster-domain)",
	"registerWithTaints": "set it with taints (--taint), checked as Kubernetes checks taints",
	"failCgroupV1":       "set it with failCgroupV1, which generate checks against the OS profile's cgroup version",
}

// OwnedKubeletConfigFields lists the KubeletConfiguration fields provision sets
// itself (a kubeletConfig may not name them), sorted.
func OwnedKubeletConfigFields() []string { return slices.Sorted(maps.Keys(ownedKubeletConfigFields)) }

// validateKubeletConfig checks a partial KubeletConfiguration (the kubelet
// settings at p): it decodes strictly into the kubelet's own types
// (k8s.io/kubelet/config/v1beta1: an unknown field, at any depth, is an error
// with its path), names no field provision owns, and names only top-level
// fields the kubelet of version knows (internal/kubeversions); merged over
// provision's settings and the kubelet's defaults, it passes the kubelet's own
// range checks (validateKubeletRanges).
func validateKubeletConfig(p validation.Path, version string, cfg map[string]any) validation.Errors {
	var es validation.Errors
	if len(cfg) == 0 {
		return nil
	}
	kp := p.Child("kubeletConfig")
	r, verr := kubeversions.For(version)
	for _, name := range slices.Sorted(maps.Keys(cfg)) {
		fp := kp.Child(name)
		switch {
		case name == "apiVersion" || name == "kind":
			want := map[string]string{"apiVersion": KubeletConfigAPIVersion, "kind": KubeletConfigKind}[name]
			if s, ok := cfg[name].(string); !ok || s != want {
				es.Add(fp, "must be %s (or left out)", want)
			}
		case ownedKubeletConfigFields[name] != "":
			es.Add(fp, "is set by provision and may not be overridden: %s", ownedKubeletConfigFields[name])
		case verr == nil && !r.HasConfigField(name):
			es.Add(fp, "kubelet %s (%s) has no KubeletConfiguration field %s (see provision's version table, docs/kubernetes-versions.md)",
				version, r, validation.Quote(name))
		}
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		es.Add(kp, "is not a JSON object: %v", err)
		return es
	}
	decoded := DecodeKubeletConfig(kp, data, &kubeletv1beta1.KubeletConfiguration{})
	es.Append(decoded)
	if len(decoded) == 0 {
		es.Append(validateKubeletRanges(kp, cfg)) // the kubelet's own ranges, on the merged config
	}
	return es
}

// DecodeKubeletConfig decodes data into out strictly, as the kubelet reads its
// config file: field names case-sensitive, no unknown or repeated field. Each
// problem is an error at its field's path under p.
func DecodeKubeletConfig(p validation.Path, data []byte, out *kubeletv1beta1.KubeletConfiguration) validation.Errors {
	var es validation.Errors
	strict, err := sigsjson.UnmarshalStrict(data, out)
	for _, e := range strict {
		fe, ok := e.(interface{ FieldPath() string })
		if !ok {
			es.Add(p, "%v", e)
			continue
		}
		if strings.HasPrefix(e.Error(), "duplicate") {
			es.Add(p.Child(fe.FieldPath()), "is given twice")
			continue
		}
		es.Add(p.Child(fe.FieldPath()), "is not a field of the kubelet's KubeletConfiguration (%s; names are case-sensitive)", KubeletConfigAPIVersion)
	}
	if err != nil {
		if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
			es.Add(p.Child(m[2]), "must be of type %s, got a JSON %s", m[3], m[1])
		} else {
			es.Add(p, "is not a KubeletConfiguration: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	return es
}

// typeErrorRE picks the value, field path and type out of the decoder's type error.
var typeErrorRE = regexp.MustCompile(`^json: cannot unmarshal (.+) into Go struct field KubeletConfiguration\.(\S+) of type (\S+)$`)

// ownedKubeletFlags are the kubelet flags provision sets itself, or that set
// what a field of its own (or a field provision owns) sets, with the reason a
// kubeletExtraArgs may not name them.
var ownedKubeletFlags = map[string]string{
	"bootstrap-kubeconfig":         "provision writes the bootstrap kubeconfig and passes it",
	"kubeconfig":                   "provision passes the kubeconfig the TLS bootstrap writes",
	"config":                       "provision passes the KubeletConfiguration it renders: use kubeletConfig",
	"container-runtime":            "provision installs containerd and points the kubelet at it",
	"container-runtime-endpoint":   "provision installs containerd and points the kubelet at its socket",
	"cloud-provider":               "set it with cloudProvider (--cloud-provider)",
	"cloud-config":                 "set it with cloudConfig (--cloud-config)",
	"node-ip":                      "set it with nodeIP (--node-ip)",
	"node-labels":                  "set them with nodeLabels (--node-label), checked against NodeRestriction",
	"register-with-taints":         "set them with taints (--taint)",
	"cluster-dns":                  "set it with clusterDNS (--cluster-dns)",
	"cluster-domain":               "set it with clusterDomain (--cluster-domain)",
	"fail-cgroupv1":                "set it with failCgroupV1",
	"cgroup-driver":                ownedKubeletConfigFields["cgroupDriver"],
	"anonymous-auth":               ownedKubeletConfigFields["authentication"],
	"authentication-token-webhook": ownedKubeletConfigFields["authentication"],
	"client-ca-file":               ownedKubeletConfigFields["authentication"],
	"authorization-mode":           ownedKubeletConfigFields["authorization"],
	"healthz-bind-address":         ownedKubeletConfigFields["healthzPort"],
	"healthz-port":                 ownedKubeletConfigFields["healthzPort"],
	"rotate-certificates":          ownedKubeletConfigFields["rotateCertificates"],
	"rotate-server-certificates":   ownedKubeletConfigFields["serverTLSBootstrap"],
}

// OwnedKubeletFlags lists the kubelet flags (without "--") a kubeletExtraArgs
// may not name, sorted.
func OwnedKubeletFlags() []string { return slices.Sorted(maps.Keys(ownedKubeletFlags)) }

var flagNameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// validateKubeletExtraArgs checks extra kubelet flags (name without "--" to
// value) at p: a flag name, not one provision sets, one the kubelet of version
// still has (internal/kubeversions), and a value that is one printable token
// (it becomes --NAME=VALUE on the kubelet's ExecStart line).
func validateKubeletExtraArgs(p validation.Path, version string, args map[string]string) validation.Errors {
	var es validation.Errors
	ap := p.Child("kubeletExtraArgs")
	r, verr := kubeversions.For(version)
	for _, name := range slices.Sorted(maps.Keys(args)) {
		fp := ap.Key(name)
		switch {
		case strings.HasPrefix(name, "-"):
			es.Add(fp, "name the flag without its leading dashes, e.g. provider-id, got %s", validation.Quote(name))
		case !flagNameRE.MatchString(name):
			es.Add(fp, "must be a kubelet flag name such as provider-id (lower-case letters, digits, '-'), got %s", validation.Quote(name))
		case ownedKubeletFlags[name] != "":
			es.Add(fp, "--%s is set by provision and may not be given here: %s", name, ownedKubeletFlags[name])
		case verr == nil && !r.HasFlag("--"+name):
			es.Add(fp, "kubelet %s (%s) has no flag --%s any more (see provision's version table, docs/kubernetes-versions.md)", version, r, name)
		default:
			es.Check(fp, flagValue(args[name]))
		}
	}
	return es
}

// flagValue checks an extra kubelet flag's value: 1-4096 printable ASCII
// characters without spaces (systemd's quoting covers the rest).
func flagValue(v string) string {
	ok := v != "" && len(v) <= 4096
	for i := 0; ok && i < len(v); i++ {
		ok = v[i] > ' ' && v[i] < 0x7f
	}
	if !ok {
		return "must be one token of 1-4096 printable ASCII characters without spaces (it becomes --NAME=VALUE on the kubelet's command line), got " + validation.Quote(v)
	}
	return ""
}

// KubeletExtraArgs renders extra kubelet flags as --NAME=VALUE, sorted by name.
func KubeletExtraArgs(args map[string]string) []string {
	out := make([]string, 0, len(args))
	for _, name := range slices.Sorted(maps.Keys(args)) {
		out = append(out, "--"+name+"="+args[name])
	}
	return out
}
