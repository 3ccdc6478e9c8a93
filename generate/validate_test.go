package generate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/osprofiles"
)

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notCert := write("key.pem", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
	garbageCert := write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	textFile := write("text", "hello\n")
	tests := []struct {
		name         string
		mutate       func(*v1alpha1.GenerateConfig)
		field, flag  string
		msg          string
		formatOption osprofiles.Format
	}{
		{"bad token", func(s *v1alpha1.GenerateConfig) { s.TokenFile, s.Token = "", "abcdef.0123456789ABCDEF" }, "token", "--token-file", "[a-z0-9]{6}.[a-z0-9]{16}", ""},
		{"token file with junk", func(s *v1alpha1.GenerateConfig) { s.TokenFile = textFile }, "token", "--token-file", "must be of the form", ""},
		{"token and file", func(s *v1alpha1.GenerateConfig) { s.Token = "abcdef.0123456789abcdef" }, "token", "--token-file", "not both", ""},
		{"missing token", func(s *v1alpha1.GenerateConfig) { s.TokenFile = "" }, "token", "--token-file", "is required", ""},
		{"unreadable token file", func(s *v1alpha1.GenerateConfig) { s.TokenFile = filepath.Join(dir, "nope") }, "tokenFile", "--token-file", "cannot read", ""},
		{"ca not pem", func(s *v1alpha1.GenerateConfig) { s.CACertFile = textFile }, "caCert", "--ca-cert", "PEM CERTIFICATE", ""},
		{"ca private key", func(s *v1alpha1.GenerateConfig) { s.CACertFile = notCert }, "caCert", "--ca-cert", `"PRIVATE KEY", must be CERTIFICATE`, ""},
		{"ca garbage", func(s *v1alpha1.GenerateConfig) { s.CACertFile = garbageCert }, "caCert", "--ca-cert", "not an X.509 certificate", ""},
		{"ca missing", func(s *v1alpha1.GenerateConfig) { s.CACertFile = "" }, "caCert", "--ca-cert", "is required", ""},
		{"kubelet version", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion = "1.31.4" }, "kubeletVersion", "--kubelet-version", "vMAJOR.MINOR.PATCH", ""},
		{"kubelet version missing", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion = "" }, "kubeletVersion", "--kubelet-version", "is required", ""},
		{"http apiserver", func(s *v1alpha1.GenerateConfig) { s.APIServerURL = "http://10.0.0.10:6443" }, "apiServerURL", "--apiserver-url", "https://", ""},
		{"apiserver with credentials", func(s *v1alpha1.GenerateConfig) { s.APIServerURL = "https://u:p@10.0.0.10:6443" }, "apiServerURL", "--apiserver-url", "credentials", ""},
		{"apiserver newline", func(s *v1alpha1.GenerateConfig) { s.APIServerURL = "https://a\n:6443" }, "apiServerURL", "--apiserver-url", "without spaces", ""},
		{"http source", func(s *v1alpha1.GenerateConfig) { s.ProvisionSource = "http://example.com/p" }, "provisionSource", "--provision-source", "--allow-http-source", ""},
		{"ftp source", func(s *v1alpha1.GenerateConfig) { s.ProvisionSource, s.AllowHTTPSource = "ftp://example.com/p", true }, "provisionSource", "--provision-source", "https:// or http://", ""},
		{"source with quote", func(s *v1alpha1.GenerateConfig) { s.ProvisionSource = "https://example.com/p'x" }, "provisionSource", "--provision-source", "without spaces, quotes", ""},
		{"source with $", func(s *v1alpha1.GenerateConfig) { s.ProvisionSource = "https://example.com/$HOME" }, "provisionSource", "--provision-source", "'$'", ""},
		{"sha256 short", func(s *v1alpha1.GenerateConfig) { s.ProvisionSHA256 = "abc" }, "provisionSHA256", "--provision-sha256", "64 lower-case hex", ""},
		{"sha256 upper", func(s *v1alpha1.GenerateConfig) { s.ProvisionSHA256 = strings.Repeat("AB", 32) }, "provisionSHA256", "--provision-sha256", "64 lower-case hex", ""},
		{"hostname underscore", func(s *v1alpha1.GenerateConfig) { s.Hostname = "worker_1" }, "hostname", "--hostname", "RFC 1123", ""},
		{"hostname newline", func(s *v1alpha1.GenerateConfig) { s.Hostname = "worker\nruncmd: x" }, "hostname", "--hostname", "RFC 1123", ""},
		{"hostname long label", func(s *v1alpha1.GenerateConfig) { s.Hostname = strings.Repeat("a", 64) }, "hostname", "--hostname", "RFC 1123", ""},
		{"hostname upper", func(s *v1alpha1.GenerateConfig) { s.Hostname = "Worker" }, "hostname", "--hostname", "lower-case", ""},
		{"unknown os", func(s *v1alpha1.GenerateConfig) { s.OS = "windows" }, "os", "--os", "one of centos-7, debian-12", ""},
		{"missing os", func(s *v1alpha1.GenerateConfig) { s.OS = "" }, "os", "--os", "is required", ""},
		{"unknown format", func(s *v1alpha1.GenerateConfig) {}, "format", "--format", "one of cloud-init, ignition, butane", "yaml"},
		{"format unsupported by os", func(s *v1alpha1.GenerateConfig) { s.OS = "fedora-coreos" }, "format", "--format", "does not boot from cloud-init", osprofiles.CloudInit},
		{"flatcar cloud-init", func(s *v1alpha1.GenerateConfig) { s.OS = "flatcar" }, "format", "--format", "flatcar does not boot from cloud-init userdata; use ignition", osprofiles.CloudInit},
		{"ignition version", func(s *v1alpha1.GenerateConfig) { s.IgnitionVersion = "3.0" }, "ignitionVersion", "--ignition-version", "3.3, 3.4, 3.5", osprofiles.Ignition},
		{"ignition version for cloud-init", func(s *v1alpha1.GenerateConfig) { s.IgnitionVersion = "3.4" }, "ignitionVersion", "--ignition-version", "only to --format ignition or butane", osprofiles.CloudInit},
		{"flatcar butane 3.5", func(s *v1alpha1.GenerateConfig) { s.OS, s.IgnitionVersion = "flatcar", "3.5" }, "ignitionVersion", "--ignition-version", "no stable version", osprofiles.Butane},
		{"arch", func(s *v1alpha1.GenerateConfig) { s.Arch = "s390x" }, "arch", "--arch", "amd64 or arm64", ""},
		{"ssh key newline", func(s *v1alpha1.GenerateConfig) { s.SSHAuthorizedKeys = []string{"ssh-ed25519 AAAA\nssh-rsa AAAA"} }, "sshAuthorizedKeys[0]", "--ssh-authorized-key", "single line", ""},
		{"ssh key type", func(s *v1alpha1.GenerateConfig) { s.SSHAuthorizedKeys = []string{s.SSHAuthorizedKeys[0], "foo AAAA"} }, "sshAuthorizedKeys[1]", "--ssh-authorized-key", "OpenSSH public key", ""},
		{"ssh key base64", func(s *v1alpha1.GenerateConfig) { s.SSHAuthorizedKeys = []string{"ssh-ed25519 not!base64"} }, "sshAuthorizedKeys[0]", "--ssh-authorized-key", "base64", ""},
		{"cloud provider name", func(s *v1alpha1.GenerateConfig) { s.CloudProvider = "Open Stack" }, "cloudProvider", "--cloud-provider", "provider name", ""},
		{"cloud config without provider", func(s *v1alpha1.GenerateConfig) { s.CloudProvider = "" }, "cloudProvider", "--cloud-provider", "required when a cloud config", ""},
		{"cloud config both", func(s *v1alpha1.GenerateConfig) { s.CloudConfig = "x" }, "cloudConfig", "--cloud-config", "not both", ""},
		{"cloud config too big", func(s *v1alpha1.GenerateConfig) {
			s.CloudConfigFile, s.CloudConfig = "", strings.Repeat("x", MaxFileSize+1)
		}, "cloudConfig", "--cloud-config", "larger than", ""},
		{"cloud config empty file", func(s *v1alpha1.GenerateConfig) { s.CloudConfigFile = write("empty", "") }, "cloudConfigFile", "--cloud-config", "is empty", ""},
		{"bad apiVersion", func(s *v1alpha1.GenerateConfig) { s.APIVersion = "v2" }, "apiVersion", "", "provision.dev/v1alpha1", ""},
		{"node ip", func(s *v1alpha1.GenerateConfig) { s.NodeIP = "10.0.0" }, "nodeIP", "--node-ip", "must be an IP address", ""},
		{"artifact sha", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Kubelet: v1alpha1.Artifact{URL: "https://mirror.internal/kubelet", SHA256: "xyz"}}
		}, "artifacts.kubelet.sha256", "", "64 lower-case hex", ""},
		{"artifact url", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Crictl: v1alpha1.Artifact{URL: "ftp://mirror/crictl.tgz"}}
		}, "artifacts.crictl.url", "", "must be an https:// or file:// URL", ""},
		{"unknown artifact", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{"kubectl": v1alpha1.Artifact{URL: "https://mirror.internal/kubectl"}}
		}, "artifacts.kubectl", "", "unknown artifact (one of " + strings.Join(artifacts.ConfigNames(), ", ") + ")", ""},
		{"apt mirror", func(s *v1alpha1.GenerateConfig) {
			s.Packages.Apt = &v1alpha1.AptRepository{URL: "https://m/debian", Suite: "bookworm"}
		}, "packages.apt.components", "", "at least one component", ""},
		{"registry mirror", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"mirror:5000"}}
		}, "containerd.registryMirrors[docker.io][0]", "", "must be an https:// or http:// URL with a host", ""},
		// Issue 12: plain http needs an opt-in, no credentials in any URL, every value checked.
		{"artifact http without opt-in", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Kubelet: v1alpha1.Artifact{URL: "http://mirror.internal/kubelet"}}
		}, "artifacts.kubelet.url", "", "must be an https:// or file:// URL (plain http only with allowHTTP: true on this artifact; pin sha256 too)", ""},
		{"artifact credentials", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Kubelet: v1alpha1.Artifact{URL: "https://user:hunter2@mirror.internal/kubelet"}}
		}, "artifacts.kubelet.url", "", "must not carry credentials (user:password@): URLs are written to world-readable files (node.yaml, 0644)", ""},
		{"source credentials", func(s *v1alpha1.GenerateConfig) { s.ProvisionSource = "https://u:p@example.com/p" }, "provisionSource", "--provision-source", "must not carry credentials", ""},
		{"apiserver credentials point to the token", func(s *v1alpha1.GenerateConfig) { s.APIServerURL = "https://u:p@10.0.0.10:6443" }, "apiServerURL", "--apiserver-url", "the node authenticates with the bootstrap token", ""},
		{"yum without gpgKey", func(s *v1alpha1.GenerateConfig) {
			s.Packages.Yum = &v1alpha1.YumRepository{BaseURL: "https://m/rocky"}
		}, "packages.yum.gpgCheck", "", "must be set to false explicitly when no gpgKey is given (packages then install unsigned); or give gpgKey", ""},
		{"registry mirror host", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.RegistryMirrors = map[string][]string{"docker.io/../../x": {"https://m"}}
		}, "containerd.registryMirrors", "", `registry "docker.io/../../x" must be a host[:port]`, ""},
		{"cloud provider with CR", func(s *v1alpha1.GenerateConfig) { s.CloudProvider = "openstack\r" }, "cloudProvider", "--cloud-provider", `got "openstack\r"`, ""},
		{"sandbox image", func(s *v1alpha1.GenerateConfig) { s.Containerd.SandboxImage = "pause\n" }, "containerd.sandboxImage", "", "must be an image reference", ""},
		// Issue 10: the version table decides the versions and the cloud providers.
		{"kubelet newer than the table", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion = "v1.38.0" }, "kubeletVersion", "--kubelet-version",
			"kubelet v1.38.0 is newer than provision knows (newest 1.37; supported are 1.35, 1.36, 1.37)", ""},
		{"kubelet older than the table", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion = "v1.20.15" }, "kubeletVersion", "--kubelet-version",
			"kubelet v1.20.15 is older than provision renders (oldest 1.21; supported are 1.35, 1.36, 1.37)", ""},
		{"in-tree provider on 1.37", func(s *v1alpha1.GenerateConfig) { s.CloudProvider = "openstack" }, "cloudProvider", "--cloud-provider",
			`"openstack" is an in-tree cloud provider: kubelet v1.37.2 (1.29 and newer) takes only "external": use external and run the provider's cloud-controller-manager`, ""},
		{"in-tree provider on 1.35", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion, s.CloudProvider = "v1.35.4", "aws" }, "cloudProvider", "--cloud-provider",
			`"aws" is an in-tree cloud provider: kubelet v1.35.4`, ""},
		{"in-tree provider on 1.29", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion, s.CloudProvider = "v1.29.0", "gce" }, "cloudProvider", "--cloud-provider",
			`"gce" is an in-tree cloud provider: kubelet v1.29.0`, ""},
		{"kubelet URL of another version", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Kubelet: v1alpha1.Artifact{URL: "https://mirror.internal/release/v1.36.3/bin/linux/amd64/kubelet"}}
		}, "artifacts.kubelet.url", "", "names kubelet v1.36.3 but kubeletVersion is v1.37.2", ""},
		{"kubelet file name of another version", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Kubelet: v1alpha1.Artifact{URL: "file:///srv/kubelet-v1.37.1"}}
		}, "artifacts.kubelet.url", "", "names kubelet v1.37.1 but kubeletVersion is v1.37.2", ""},
		{"containerd install value", func(s *v1alpha1.GenerateConfig) { s.Containerd.Install = "snap" }, "containerd.install", "", `must be package or tarball (or empty: the OS profile's), got "snap"`, ""},
		{"containerd install on an image OS", func(s *v1alpha1.GenerateConfig) {
			s.OS, s.Containerd.Install = "flatcar", v1alpha1.InstallTarball
		}, "containerd.install", "", "flatcar ships containerd in its image: leave install empty", ""},
		{"containerd version of a package", func(s *v1alpha1.GenerateConfig) { s.Containerd.Version = "2.3.7" }, "containerd.version", "", "is the version of the release tarball, but containerd comes from the containerd package on ubuntu-22.04", ""},
		// Issue 11: the settings of a node workloads can use.
		{"cluster dns not an ip", func(s *v1alpha1.GenerateConfig) { s.ClusterDNS = []string{"10.96.0.10", "kube-dns"} }, "clusterDNS[1]", "--cluster-dns", `must be an IP address, got "kube-dns"`, ""},
		{"cluster dns twice", func(s *v1alpha1.GenerateConfig) { s.ClusterDNS = []string{"10.96.0.10", "10.96.0.10"} }, "clusterDNS[1]", "--cluster-dns", "lists 10.96.0.10 twice", ""},
		{"cluster domain", func(s *v1alpha1.GenerateConfig) { s.ClusterDomain = "Cluster_Local" }, "clusterDomain", "--cluster-domain", "must be a DNS name (RFC 1123)", ""},
		{"pod cidr", func(s *v1alpha1.GenerateConfig) { s.PodCIDRs = []string{"10.244.0.0/16", "10.244.0.0"} }, "podCIDRs[1]", "--pod-cidr", `must be an IPv4 or IPv6 CIDR such as 10.96.0.0/12 or fd00:10:96::/112, got "10.244.0.0"`, ""},
		{"pod cidr host bits", func(s *v1alpha1.GenerateConfig) { s.PodCIDRs = []string{"10.244.3.0/16"} }, "podCIDRs[0]", "--pod-cidr", "has host bits set; the range is 10.244.0.0/16", ""},
		{"service cidr", func(s *v1alpha1.GenerateConfig) { s.ServiceCIDRs = []string{"fd00::/200"} }, "serviceCIDRs[0]", "--service-cidr", `got "fd00::/200"`, ""},
		{"service cidrs of one family", func(s *v1alpha1.GenerateConfig) { s.ServiceCIDRs = []string{"10.96.0.0/12", "10.128.0.0/12"} }, "serviceCIDRs[1]", "--service-cidr", "second IPv4 range", ""},
		{"cluster dns outside the service cidrs", func(s *v1alpha1.GenerateConfig) { s.ServiceCIDRs = []string{"10.100.0.0/16"} }, "clusterDNS[0]", "--cluster-dns", "10.96.0.10 is not inside serviceCIDRs (10.100.0.0/16)", ""},
		{"node label key", func(s *v1alpha1.GenerateConfig) { s.NodeLabels = map[string]string{"pool/a/b": "x"} }, "nodeLabels[pool/a/b]", "--node-label", `label key "pool/a/b" is invalid`, ""},
		{"node label value", func(s *v1alpha1.GenerateConfig) { s.NodeLabels = map[string]string{"example.com/pool": "a b"} }, "nodeLabels[example.com/pool]", "--node-label", `label value "a b" is invalid`, ""},
		{"node role label", func(s *v1alpha1.GenerateConfig) {
			s.NodeLabels = map[string]string{"node-role.kubernetes.io/worker": ""}
		}, "nodeLabels[node-role.kubernetes.io/worker]", "--node-label", "NodeRestriction admission plugin refuses them", ""},
		{"kubernetes.io label", func(s *v1alpha1.GenerateConfig) { s.NodeLabels = map[string]string{"kubernetes.io/pool": "a"} }, "nodeLabels[kubernetes.io/pool]", "--node-label", "use a key of your own prefix", ""},
		{"taint effect", func(s *v1alpha1.GenerateConfig) {
			s.Taints = []string{"dedicated=gpu:NoSchedule", "dedicated=gpu:Evict"}
		}, "taints[1]", "--taint", `unknown effect "Evict"`, ""},
		{"taint without effect", func(s *v1alpha1.GenerateConfig) { s.Taints = []string{"dedicated=gpu"} }, "taints[0]", "--taint", "must be key=value:Effect or key:Effect", ""},
		{"taint twice", func(s *v1alpha1.GenerateConfig) {
			s.Taints = []string{"dedicated=gpu:NoSchedule", "dedicated=cpu:NoSchedule"}
		}, "taints[1]", "--taint", "one taint per key and effect", ""},
		{"kubelet config unknown field", func(s *v1alpha1.GenerateConfig) { s.KubeletConfig = map[string]any{"maxPod": 50} }, "kubeletConfig.maxPod", "", "is not a field of the kubelet's KubeletConfiguration", ""},
		{"kubelet config nested unknown field", func(s *v1alpha1.GenerateConfig) {
			s.KubeletConfig = map[string]any{"logging": map[string]any{"formt": "json"}}
		}, "kubeletConfig.logging.formt", "", "is not a field of the kubelet's KubeletConfiguration", ""},
		{"kubelet config case", func(s *v1alpha1.GenerateConfig) { s.KubeletConfig = map[string]any{"MaxPods": 50} }, "kubeletConfig.MaxPods", "", "names are case-sensitive", ""},
		{"kubelet config type", func(s *v1alpha1.GenerateConfig) { s.KubeletConfig = map[string]any{"maxPods": "many"} }, "kubeletConfig.maxPods", "", "must be of type int32, got a JSON string", ""},
		{"kubelet config owned field", func(s *v1alpha1.GenerateConfig) {
			s.KubeletConfig = map[string]any{"authorization": map[string]any{"mode": "AlwaysAllow"}}
		}, "kubeletConfig.authorization", "", "is set by provision and may not be overridden: provision owns the kubelet API's authorization", ""},
		{"kubelet config cgroup driver", func(s *v1alpha1.GenerateConfig) { s.KubeletConfig = map[string]any{"cgroupDriver": "cgroupfs"} }, "kubeletConfig.cgroupDriver", "", "SystemdCgroup = true", ""},
		{"kubelet config field of a newer kubelet", func(s *v1alpha1.GenerateConfig) {
			s.KubeletVersion, s.KubeletConfig = "v1.36.3", map[string]any{"defaultPodSysctls": map[string]any{}}
		}, "kubeletConfig.defaultPodSysctls", "", `kubelet v1.36.3 (1.36) has no KubeletConfiguration field "defaultPodSysctls"`, ""},
		{"kubelet config kind", func(s *v1alpha1.GenerateConfig) { s.KubeletConfig = map[string]any{"kind": "KubeProxyConfiguration"} }, "kubeletConfig.kind", "", "must be KubeletConfiguration", ""},
		{"kubelet extra arg with dashes", func(s *v1alpha1.GenerateConfig) { s.KubeletExtraArgs = map[string]string{"--provider-id": "x"} }, "kubeletExtraArgs[--provider-id]", "", "without its leading dashes", ""},
		{"kubelet extra arg name", func(s *v1alpha1.GenerateConfig) { s.KubeletExtraArgs = map[string]string{"Provider_ID": "x"} }, "kubeletExtraArgs[Provider_ID]", "", "must be a kubelet flag name", ""},
		{"kubelet extra arg provision sets", func(s *v1alpha1.GenerateConfig) { s.KubeletExtraArgs = map[string]string{"node-labels": "a=b"} }, "kubeletExtraArgs[node-labels]", "", "--node-labels is set by provision and may not be given here: set them with nodeLabels", ""},
		{"kubelet extra arg security", func(s *v1alpha1.GenerateConfig) { s.KubeletExtraArgs = map[string]string{"anonymous-auth": "true"} }, "kubeletExtraArgs[anonymous-auth]", "", "provision owns the kubelet API's authentication", ""},
		{"kubelet extra arg gone", func(s *v1alpha1.GenerateConfig) {
			s.KubeletExtraArgs = map[string]string{"pod-infra-container-image": "p"}
		}, "kubeletExtraArgs[pod-infra-container-image]", "", "kubelet v1.37.2 (1.37) has no flag --pod-infra-container-image any more", ""},
		{"kubelet extra arg value space", func(s *v1alpha1.GenerateConfig) { s.KubeletExtraArgs = map[string]string{"provider-id": "a b"} }, "kubeletExtraArgs[provider-id]", "", "must be one token of 1-4096 printable ASCII characters without spaces", ""},
		{"kubelet extra arg value newline", func(s *v1alpha1.GenerateConfig) {
			s.KubeletExtraArgs = map[string]string{"provider-id": "x\nExecStartPre=/bin/sh"}
		}, "kubeletExtraArgs[provider-id]", "", "must be one token", ""},
		{"kubelet extra arg empty", func(s *v1alpha1.GenerateConfig) { s.KubeletExtraArgs = map[string]string{"provider-id": ""} }, "kubeletExtraArgs[provider-id]", "", "must be one token", ""},
		{"containerd version form", func(s *v1alpha1.GenerateConfig) { s.Containerd.Version = "latest" }, "containerd.version", "", "must be MAJOR.MINOR.PATCH", ""},
		// Issue 11, registries: every field of containerd.registries.
		{"registry host", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal/x": {SkipVerify: true}}
		}, "containerd.registries", "", `registry "r.internal/x" must be a host[:port]`, ""},
		{"registry empty", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {}}
		}, "containerd.registries[r.internal]", "", "sets nothing", ""},
		{"registry CA file unreadable", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CACertFile: filepath.Join(dir, "nope")}}
		}, "containerd.registries[r.internal].caCertFile", "", "cannot read", ""},
		{"registry CA file not PEM", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CACertFile: textFile}}
		}, "containerd.registries[r.internal].caCert", "", "must be a PEM CERTIFICATE", ""},
		{"registry CA file garbage", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CACertFile: garbageCert}}
		}, "containerd.registries[r.internal].caCert", "", "not an X.509 certificate", ""},
		{"registry CA inline private key", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CACert: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}}
		}, "containerd.registries[r.internal].caCert", "", `"PRIVATE KEY", must be CERTIFICATE`, ""},
		{"registry CA inline and file", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CACert: "x", CACertFile: s.CACertFile}}
		}, "containerd.registries[r.internal].caCert", "", "not both", ""},
		{"registry caPath", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CAPath: "/etc/ca.crt"}}
		}, "containerd.registries[r.internal].caPath", "", "is set by generate", ""},
		{"registry skipVerify with CA", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CACertFile: s.CACertFile, SkipVerify: true}}
		}, "containerd.registries[r.internal].skipVerify", "", "cannot be combined with a CA", ""},
		{"registry username alone", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {Username: "u"}}
		}, "containerd.registries[r.internal].password", "", "is required with username", ""},
		{"registry password alone", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {Password: "pw"}}
		}, "containerd.registries[r.internal].username", "", "is required with password", ""},
		{"registry token and password", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {Username: "u", Password: "pw", IdentityToken: "t"}}
		}, "containerd.registries[r.internal].identityToken", "", "excludes username and password", ""},
		{"registry password newline", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {Username: "u", Password: "pw\n"}}
		}, "containerd.registries[r.internal].password", "", "printable ASCII", ""},
		{"registry credentialsFile", func(s *v1alpha1.GenerateConfig) { s.Containerd.CredentialsFile = "/x.json" }, "containerd.credentialsFile", "", "is set by generate", ""},
		{"extra file at a registry CA", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CACertFile: s.CACertFile}}
			s.Files = []v1alpha1.File{{Path: v1alpha1.RegistryCAPath("r.internal"), Content: "x"}}
		}, "files[0].path", "", "is written by provision itself", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := readmeSpec(t, "ubuntu-22.04")
			tt.mutate(&s)
			out, err := Render(s, tt.formatOption)
			if err == nil || out != nil {
				t.Fatalf("want an error and no output, got %v, %d bytes", err, len(out))
			}
			es, ok := err.(validation.Errors)
			if !ok {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			for _, e := range es {
				if e.Field == tt.field && e.Flag == tt.flag && strings.Contains(e.Message, tt.msg) {
					if !strings.Contains(err.Error(), tt.flag+" / "+tt.field+": ") && tt.flag != "" {
						t.Fatalf("Error() does not name flag and field: %q", err.Error())
					}
					return
				}
			}
			t.Fatalf("no error {%s %s %q} in:\n%v", tt.field, tt.flag, tt.msg, err)
		})
	}
}

// TestVersionPolicyAccepts: what the version table allows renders: the
// supported minors, a legacy minor (with a warning, TestWarnings), in-tree
// providers before 1.29, external always, a cloud config with external, and
// kubelet URLs naming the version or none.
func TestVersionPolicyAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.GenerateConfig)
	}{
		{"1.35", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion = "v1.35.4" }},
		{"1.36", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion = "v1.36.3" }},
		{"legacy 1.31", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion = "v1.31.4" }},
		{"in-tree on 1.28", func(s *v1alpha1.GenerateConfig) { s.KubeletVersion, s.CloudProvider = "v1.28.15", "openstack" }},
		{"external without a cloud config", func(s *v1alpha1.GenerateConfig) { s.CloudConfigFile = "" }},
		{"no provider", func(s *v1alpha1.GenerateConfig) { s.CloudProvider, s.CloudConfigFile = "", "" }},
		{"mirror kubelet without a version", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Kubelet: v1alpha1.Artifact{URL: "https://mirror.internal/kubelet"}}
		}},
		{"mirror kubelet of the version", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Kubelet: v1alpha1.Artifact{URL: "https://mirror.internal/k8s/v1.37.2/kubelet"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := readmeSpec(t, "ubuntu-22.04")
			tt.mutate(&s)
			if _, err := Render(s, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWarnings: a legacy kubelet minor is reported (Warnings, printed by
// provision generate on stderr); a supported one and an invalid one are not.
func TestWarnings(t *testing.T) {
	tests := []struct{ version, want string }{
		{"v1.37.2", ""},
		{"v1.35.4", ""},
		{"v1.34.3", "kubelet 1.34 is not supported (end of life upstream 2026-10-27; supported are 1.35, 1.36, 1.37)"},
		{"v1.23.17", "kubelet 1.23 is not supported (end of life upstream 2023-02-28; supported are 1.35, 1.36, 1.37)"},
		{"v1.38.0", ""},
		{"garbage", ""},
	}
	for _, tt := range tests {
		s := readmeSpec(t, "ubuntu-22.04")
		s.KubeletVersion = tt.version
		got := strings.Join(Warnings(s), "\n")
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("Warnings(%s) = %q, want %q", tt.version, got, tt.want)
		}
	}
	// Issue 11: a node without cluster DNS is reported.
	s := readmeSpec(t, "ubuntu-22.04")
	s.ClusterDNS = nil
	if got := strings.Join(Warnings(s), "\n"); !strings.HasPrefix(got, "no clusterDNS (--cluster-dns): pods with dnsPolicy ClusterFirst") {
		t.Errorf("Warnings without clusterDNS = %q", got)
	}
}

// TestAllErrorsAtOnce: every problem is reported, in input order.
func TestAllErrorsAtOnce(t *testing.T) {
	s := v1alpha1.GenerateConfig{OS: "windows", Arch: "x", KubeletVersion: "latest", APIServerURL: "http://x", Token: "nope",
		CACert: "not pem", Hostname: "-bad", ProvisionSource: "ftp://x", ProvisionSHA256: "zz"}
	err := Validate(s)
	es, ok := err.(validation.Errors)
	if !ok {
		t.Fatalf("%T %v", err, err)
	}
	var fields []string
	for _, e := range es {
		fields = append(fields, e.Field)
	}
	want := "os arch kubeletVersion apiServerURL token caCert hostname provisionSource provisionSHA256"
	if got := strings.Join(fields, " "); got != want {
		t.Fatalf("fields = %s\nwant     %s", got, want)
	}
}

// TestSecretsNeverInErrors: neither the token (nor a prefix of it) nor the cloud
// config appears in any error, whatever else is wrong.
func TestSecretsNeverInErrors(t *testing.T) {
	secrets := []string{"abcdef.0123456789abcdef", "ABCDEF.0123456789ABCDEF", "abcdef.0123456789abcdefX", "tok\nen: with: yaml"}
	const cloudSecret = "password = hunter2-cloud-secret"
	for _, tok := range secrets {
		for _, mut := range []func(*v1alpha1.GenerateConfig){
			func(s *v1alpha1.GenerateConfig) {},
			func(s *v1alpha1.GenerateConfig) { s.APIServerURL = "http://" + tok },
			func(s *v1alpha1.GenerateConfig) { s.OS, s.Hostname = "", "-x" },
			func(s *v1alpha1.GenerateConfig) { s.CloudProvider = "" },
			func(s *v1alpha1.GenerateConfig) { s.CACert, s.CACertFile = cloudSecret, "" },
		} {
			s := readmeSpec(t, "ubuntu-22.04")
			s.TokenFile, s.Token = "", tok
			s.CloudConfigFile, s.CloudConfig = "", cloudSecret
			mut(&s)
			_, err := Render(s, "")
			if err == nil {
				continue
			}
			msg := err.Error()
			if strings.Contains(s.APIServerURL, tok) {
				continue // the user put it in a non-secret field; that field may be quoted
			}
			for _, leak := range []string{tok[:6], tok, "hunter2"} {
				if strings.Contains(msg, leak) {
					t.Fatalf("error leaks %q: %s", leak, msg)
				}
			}
		}
	}
	// The token file's contents are never quoted either.
	p := filepath.Join(t.TempDir(), "token")
	os.WriteFile(p, []byte("qwerty.secretsecretsecretsecret\n"), 0o600)
	s := readmeSpec(t, "ubuntu-22.04")
	s.TokenFile = p
	if _, err := Render(s, ""); err == nil || strings.Contains(err.Error(), "qwerty") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("token file: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	doc := []byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: flatcar\ncaCertFile: ca.crt\ntokenFile: /abs/token\nsshAuthorizedKeys: [a, b]\n")
	s, err := ParseConfig(doc, "/base")
	if err != nil {
		t.Fatal(err)
	}
	if s.OS != "flatcar" || s.CACertFile != "/base/ca.crt" || s.TokenFile != "/abs/token" || len(s.SSHAuthorizedKeys) != 2 {
		t.Fatalf("%+v", s)
	}
	if _, err := ParseConfig([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nbogus: 1\n"), ""); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field: %v", err)
	}
	if _, err := ParseConfig([]byte("os: flatcar\n"), ""); err == nil || !strings.Contains(err.Error(), "apiVersion") {
		t.Fatalf("missing apiVersion: %v", err)
	}
	if _, err := ParseConfig([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\ntoken: [abcdef.0123456789abcdef]\n"), ""); err == nil || strings.Contains(err.Error(), "abcdef") {
		t.Fatalf("type error must not quote the token: %v", err)
	}
}

func TestSizesReport(t *testing.T) {
	r := Sizes(make([]byte, 16385))
	if r.Raw != 16385 || r.Base64 != 21848 || r.Fits(Limits[0]) || !r.Fits(Limits[1]) {
		t.Fatalf("%+v", r)
	}
	if s := r.String(); !strings.Contains(s, "AWS EC2") || !strings.Contains(s, "DOES NOT FIT") || !strings.Contains(s, "OpenStack Nova") {
		t.Fatal(s)
	}
}
