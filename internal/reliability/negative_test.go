package reliability

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// badInput is one bad input to the built binary and the specific error it must
// get: every string of want (the field or flag and the message) on stderr,
// exit status 1, nothing on stdout.
type badInput struct {
	name string
	args []string
	// files are written under the work dir before the run ("root/..." is the node root).
	files map[string]string
	want  []string
}

const (
	goodToken = "abcdef.0123456789abcdef"
	goodSum   = "abababababababababababababababababababababababababababababababab"
)

func genArgs(extra ...string) []string {
	return append([]string{"generate", "--os", "ubuntu-22.04", "--kubelet-version", "v1.37.2", "--apiserver-url", "https://10.0.0.10:6443",
		"--token-file", "token", "--ca-cert", "ca.crt", "--provision-source", "https://example.com/p", "--provision-sha256", goodSum, "-o", "out"}, extra...)
}

// with replaces the value of flag in args (or appends flag and value).
func with(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

const genHead = "apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: debian-12\nkubeletVersion: v1.37.2\napiServerURL: https://10.0.0.10:6443\n" +
	"tokenFile: token\ncaCertFile: ca.crt\nprovisionSource: https://example.com/p\nprovisionSHA256: " + goodSum + "\n"

const nodeHead = "apiVersion: provision.dev/v1alpha1\nkind: NodeConfig\nosProfile: debian-12\n"

// nodeDoc is a valid node config with the kubernetes and artifacts sections
// replaced by the given ones when set.
func nodeDoc(kube, arts, extra string) string {
	if kube == "" {
		kube = "  version: v1.37.2\n"
	}
	if arts == "" {
		arts = "  kubelet:\n    url: https://m.internal/kubelet\n  cniPlugins:\n    url: https://m.internal/cni.tgz\n  crictl:\n    url: https://m.internal/crictl.tgz\n"
	}
	return nodeHead + "kubernetes:\n" + kube +
		"  caCertPath: /etc/kubernetes/pki/ca.crt\n  bootstrapKubeconfigPath: /etc/kubernetes/bootstrap-kubelet.conf\n  kubeconfigPath: /etc/kubernetes/kubelet.conf\n" +
		"artifacts:\n" + arts + extra
}

func nodePlan(extra ...string) []string {
	return append([]string{"node", "plan", "--root", "root", "--config", "node.yaml"}, extra...)
}

func badInputs() []badInput {
	g := genArgs()
	seed := []string{"node", "plan", "--root", "root", "--kubelet-version", "v1.37.2"}
	return []badInput{
		// generate: flags
		{name: "generate --os unknown", args: with(g, "--os", "windows"), want: []string{"--os / os: ", "one of centos-7, debian-12"}},
		{name: "generate --format unknown", args: with(g, "--format", "yaml"), want: []string{"--format / format: ", "one of cloud-init, ignition, butane"}},
		{name: "generate --ignition-version 3.0", args: with(with(g, "--format", "ignition"), "--ignition-version", "3.0"), want: []string{"--ignition-version / ignitionVersion: ", "3.3, 3.4, 3.5"}},
		{name: "generate --format cloud-init on flatcar", args: with(with(g, "--os", "flatcar"), "--format", "cloud-init"), want: []string{"--format / format: ", "does not boot from cloud-init"}},
		{name: "generate --kubelet-version without v", args: with(g, "--kubelet-version", "1.31"), want: []string{"--kubelet-version / kubeletVersion: ", "vMAJOR.MINOR.PATCH", `got "1.31"`}},
		{name: "generate --apiserver-url http", args: with(g, "--apiserver-url", "http://10.0.0.10:6443"), want: []string{"--apiserver-url / apiServerURL: must be an https:// URL (the API server is only reached over TLS"}},
		{name: "generate --apiserver-url with credentials", args: with(g, "--apiserver-url", "https://u:pw@10.0.0.10:6443"), want: []string{"--apiserver-url / apiServerURL: ", "must not carry credentials"}},
		{name: "generate --apiserver-url without host", args: with(g, "--apiserver-url", "https://"), want: []string{"--apiserver-url / apiServerURL: ", "with a host"}},
		{name: "generate --token malformed", args: append(with(g, "--token-file", ""), "--token", "ABCDEF.0123456789abcdef"), want: []string{"/ token: ", "[a-z0-9]{6}.[a-z0-9]{16}"}},
		{name: "generate --token and --token-file", args: append(g, "--token", goodToken), want: []string{"/ token: ", "not both"}},
		{name: "generate --token-file missing", args: with(g, "--token-file", "nope"), want: []string{"--token-file / tokenFile: ", "cannot read"}},
		{name: "generate --token-file with junk", args: with(g, "--token-file", "cloud.conf"), want: []string{"--token-file / token: ", "must be of the form"}},
		{name: "generate --ca-cert not PEM", args: with(g, "--ca-cert", "cloud.conf"), want: []string{"--ca-cert / caCert: ", "PEM CERTIFICATE"}},
		{name: "generate --ca-cert garbage certificate", args: with(g, "--ca-cert", "garbage.pem"), files: map[string]string{"garbage.pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, want: []string{"--ca-cert / caCert: ", "not an X.509 certificate"}},
		{name: "generate --ca-cert private key", args: with(g, "--ca-cert", "key.pem"), files: map[string]string{"key.pem": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}, want: []string{"--ca-cert / caCert: ", `"PRIVATE KEY", must be CERTIFICATE`}},
		{name: "generate --cloud-config without provider", args: append(g, "--cloud-config", "cloud.conf"), want: []string{"--cloud-provider / cloudProvider: ", "required when a cloud config"}},
		{name: "generate --cloud-provider with a space", args: append(g, "--cloud-provider", "Open Stack"), want: []string{"--cloud-provider / cloudProvider: ", "provider name"}},
		{name: "generate --hostname upper-case", args: append(g, "--hostname", "Worker"), want: []string{"--hostname / hostname: ", "lower-case"}},
		{name: "generate --hostname with newline", args: append(g, "--hostname", "w\nruncmd: [x]"), want: []string{"--hostname / hostname: ", "RFC 1123"}},
		{name: "generate --ssh-authorized-key not a key", args: append(g, "--ssh-authorized-key", "foo AAAA"), want: []string{"--ssh-authorized-key / sshAuthorizedKeys[0]: ", "OpenSSH public key"}},
		{name: "generate --provision-source http", args: with(g, "--provision-source", "http://example.com/p"), want: []string{"--provision-source / provisionSource: ", "--allow-http-source"}},
		{name: "generate --provision-source ftp", args: append(with(g, "--provision-source", "ftp://example.com/p"), "--allow-http-source"), want: []string{"--provision-source / provisionSource: ", "https:// or http://"}},
		{name: "generate --provision-source with $", args: with(g, "--provision-source", "https://example.com/$HOME"), want: []string{"--provision-source / provisionSource: ", "'$'"}},
		{name: "generate --provision-sha256 upper-case", args: with(g, "--provision-sha256", strings.ToUpper(goodSum)), want: []string{"--provision-sha256 / provisionSHA256: ", "64 lower-case hex"}},
		{name: "generate --arch", args: append(g, "--arch", "mips"), want: []string{"--arch / arch: must be amd64 or arm64"}},
		{name: "generate --node-ip", args: append(g, "--node-ip", "10.0.0"), want: []string{"--node-ip / nodeIP: ", "must be an IP address"}},
		{name: "generate --max-size too small", args: append(g, "--max-size", "100"), want: []string{"--max-size", "100"}},
		{name: "generate unknown flag", args: append(g, "--bogus"), want: []string{"unknown flag: --bogus"}},
		// generate: config file fields
		{name: "generate config unknown field", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "bogus: 1\n"}, want: []string{"g.yaml: parse GenerateConfig: ", `unknown field "bogus"`}},
		{name: "generate config apiVersion", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": strings.Replace(genHead, "provision.dev/v1alpha1", "v1", 1)}, want: []string{"apiVersion: a GenerateConfig document needs apiVersion: provision.dev/v1alpha1"}},
		{name: "generate config artifacts.kubelet.sha256", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "artifacts:\n  kubelet:\n    url: https://m/kubelet\n    sha256: xyz\n"}, want: []string{"artifacts.kubelet.sha256: ", "64 lower-case hex"}},
		{name: "generate config artifacts.crictl.url", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "artifacts:\n  crictl:\n    url: ftp://m/crictl.tgz\n"}, want: []string{"artifacts.crictl.url: must be an https:// or file:// URL"}},
		{name: "generate config packages.apt.components", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "packages:\n  apt:\n    url: https://m/debian\n    suite: bookworm\n"}, want: []string{"packages.apt.components: ", "at least one component"}},
		{name: "generate config containerd mirror", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "containerd:\n  registryMirrors:\n    docker.io: [\"mirror:5000\"]\n"}, want: []string{"containerd.registryMirrors[docker.io][0]: must be an https:// or http:// URL with a host"}},
		{name: "generate config artifacts http without allowHTTP", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "artifacts:\n  kubelet:\n    url: http://m/kubelet\n"}, want: []string{"artifacts.kubelet.url: must be an https:// or file:// URL (plain http only with allowHTTP: true on this artifact"}},
		{name: "generate config artifacts credentials", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "artifacts:\n  kubelet:\n    url: https://u:pw@m/kubelet\n"}, want: []string{"artifacts.kubelet.url: must not carry credentials (user:password@)"}},
		{name: "generate config packages.yum without gpgKey", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "packages:\n  yum:\n    baseURL: https://m/rocky\n"}, want: []string{"packages.yum.gpgCheck: must be set to false explicitly when no gpgKey is given"}},
		{name: "generate config registry host", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "containerd:\n  registryMirrors:\n    \"../x\": [\"https://m\"]\n"}, want: []string{`containerd.registryMirrors: registry "../x" must be a host[:port]`}},
		{name: "generate --cloud-provider with a carriage return", args: append(g, "--cloud-provider", "external\r"), want: []string{"--cloud-provider / cloudProvider: must be a provider name", `got "external\r"`}},
		{name: "generate config tokenFile missing", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": strings.Replace(genHead, "tokenFile: token", "tokenFile: missing-token", 1)}, want: []string{"tokenFile: ", "cannot read"}},
		// node: config fields
		{name: "node config unknown field", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "", "bogus: true\n")}, want: []string{"parse node config: ", `unknown field "bogus"`}},
		{name: "node config kubernetes.version", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("  version: 1.31\n", "", "")}, want: []string{"kubernetes.version: must be vMAJOR.MINOR.PATCH", `got "1.31"`}},
		{name: "node config kubernetes.clusterDNS", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("  version: v1.37.2\n  clusterDNS: [\"10.96.0\"]\n", "", "")}, want: []string{"kubernetes.clusterDNS[0]: must be an IP address", `got "10.96.0"`}},
		{name: "node config kubernetes.nodeIP", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("  version: v1.37.2\n  nodeIP: node-1\n", "", "")}, want: []string{"kubernetes.nodeIP: must be an IP address"}},
		{name: "node config kubernetes.apiServerURL", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("  version: v1.37.2\n  apiServerURL: http://10.0.0.1:6443\n", "", "")}, want: []string{"kubernetes.apiServerURL: must be an https:// URL"}},
		{name: "node config kubernetes.cloudConfigPath", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("  version: v1.37.2\n  cloudConfigPath: cloud.conf\n", "", "")}, want: []string{"kubernetes.cloudConfigPath: must be an absolute path"}},
		{name: "node config artifacts.kubelet.url ftp", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "  kubelet:\n    url: ftp://m/kubelet\n  cniPlugins:\n    url: https://m/c\n  crictl:\n    url: https://m/k\n", "")}, want: []string{"artifacts.kubelet.url: must be an https:// or file:// URL"}},
		{name: "node config artifacts.cniPlugins.url without host", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "  kubelet:\n    url: https://m/kubelet\n  cniPlugins:\n    url: https://\n  crictl:\n    url: https://m/k\n", "")}, want: []string{"artifacts.cniPlugins.url: must be an https:// or file:// URL with a host"}},
		{name: "node config artifacts.crictl missing", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "  kubelet:\n    url: https://m/kubelet\n  cniPlugins:\n    url: https://m/c\n", "")}, want: []string{"artifacts.crictl.url: is required"}},
		{name: "node config artifacts.runc.sha256", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "", "") + "  runc:\n    url: https://m/runc\n    sha256: ABC\n"}, want: []string{"artifacts.runc.sha256: must be 64 lower-case hex digits"}},
		{name: "node config osProfile", args: nodePlan(), files: map[string]string{"node.yaml": strings.Replace(nodeDoc("", "", ""), "debian-12", "windows", 1)}, want: []string{"osProfile: ", "supported are"}},
		{name: "node config arch", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "", "arch: s390x\n")}, want: []string{`arch: must be amd64 or arm64, got "s390x"`}},
		{name: "node config packages.apt.signedBy", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "", "packages:\n  apt:\n    url: https://m/debian\n    suite: bookworm\n    components: [main]\n    signedBy: key.gpg\n")}, want: []string{"packages.apt.signedBy: must be an absolute path"}},
		{name: "node config packages.yum.gpgKey", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "", "packages:\n  yum:\n    baseURL: https://m/rocky\n    gpgKey: http://m/key\n")}, want: []string{"packages.yum.gpgKey: must be an https:// or file:// URL"}},
		{name: "node config registry host", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "", "containerd:\n  registryMirrors:\n    \"bad/host\": [\"https://m\"]\n")}, want: []string{`containerd.registryMirrors: registry "bad/host" must be a host[:port]`}},
		{name: "node config kubernetes.cloudProvider with a carriage return", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("  version: v1.37.2\n  cloudProvider: \"external\\r\"\n", "", "")}, want: []string{"kubernetes.cloudProvider: must be a provider name", `got "external\r"`}},
		{name: "node config kubernetes.kubeconfigPath with ..", args: nodePlan(), files: map[string]string{"node.yaml": strings.Replace(nodeDoc("", "", ""), "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/../../root/x", 1)}, want: []string{"kubernetes.kubeconfigPath: must be a clean absolute path"}},
		{name: "node config artifacts http without allowHTTP", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "  kubelet:\n    url: http://m/kubelet\n  cniPlugins:\n    url: https://m/c\n  crictl:\n    url: https://m/k\n", "")}, want: []string{"artifacts.kubelet.url: must be an https:// or file:// URL (plain http only with allowHTTP: true on this artifact"}},
		{name: "node config artifacts credentials", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "  kubelet:\n    url: https://u:pw@m/kubelet\n  cniPlugins:\n    url: https://m/c\n  crictl:\n    url: https://m/k\n", "")}, want: []string{"artifacts.kubelet.url: must not carry credentials (user:password@)"}},
		{name: "node config packages.yum without gpgKey", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "", "packages:\n  yum:\n    baseURL: https://m/rocky\n")}, want: []string{"packages.yum.gpgCheck: must be set to false explicitly when no gpgKey is given"}},
		{name: "node config not YAML", args: nodePlan(), files: map[string]string{"node.yaml": "kind: [\n"}, want: []string{"node.yaml: parse node config: "}},
		// issue 10: the version table (internal/kubeversions) decides versions and cloud providers
		{name: "generate --cloud-provider in-tree on 1.37", args: append(g, "--cloud-provider", "openstack", "--cloud-config", "cloud.conf"), want: []string{"--cloud-provider / cloudProvider: ", `"openstack" is an in-tree cloud provider: kubelet v1.37.2 (1.29 and newer) takes only "external"`, "use external and run the provider's cloud-controller-manager"}},
		{name: "generate --kubelet-version newer than the table", args: with(g, "--kubelet-version", "v1.38.0"), want: []string{"--kubelet-version / kubeletVersion: kubelet v1.38.0 is newer than provision knows", "supported are 1.35, 1.36, 1.37"}},
		{name: "generate --kubelet-version older than the table", args: with(g, "--kubelet-version", "v1.19.16"), want: []string{"--kubelet-version / kubeletVersion: kubelet v1.19.16 is older than provision renders", "supported are 1.35, 1.36, 1.37"}},
		{name: "generate config kubelet URL of another version", args: []string{"generate", "--config", "g.yaml"}, files: map[string]string{"g.yaml": genHead + "artifacts:\n  kubelet:\n    url: https://m/release/v1.36.3/bin/linux/amd64/kubelet\n"}, want: []string{"artifacts.kubelet.url: names kubelet v1.36.3 but kubeletVersion is v1.37.2"}},
		{name: "node config in-tree cloud provider on 1.37", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("  version: v1.37.2\n  cloudProvider: openstack\n", "", "")}, want: []string{`kubernetes.cloudProvider: "openstack" is an in-tree cloud provider: kubelet v1.37.2`, "use external and run the provider's cloud-controller-manager"}},
		{name: "node config kubernetes.version outside the table", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("  version: v1.38.2\n", "", "")}, want: []string{"kubernetes.version: kubelet v1.38.2 is newer than provision knows (newest 1.37; supported are 1.35, 1.36, 1.37)"}},
		{name: "node config kubelet URL of another version", args: nodePlan(), files: map[string]string{"node.yaml": nodeDoc("", "  kubelet:\n    url: https://m/v1.36.3/kubelet\n  cniPlugins:\n    url: https://m/c\n  crictl:\n    url: https://m/k\n", "")}, want: []string{"artifacts.kubelet.url: names kubelet v1.36.3 but kubernetes.version is v1.37.2"}},
		{name: "node --cloud-provider in-tree", args: append(seed, "--cloud-provider", "aws"), want: []string{`--cloud-provider / kubernetes.cloudProvider: "aws" is an in-tree cloud provider: kubelet v1.37.2`}},
		{name: "node --kubelet-version outside the table", args: with(seed, "--kubelet-version", "v1.38.0"), want: []string{"--kubelet-version / kubernetes.version: kubelet v1.38.0 is newer than provision knows"}},
		// node: flags
		{name: "node --token malformed", args: append(seed, "--apiserver-url", "https://10.0.0.1:6443", "--token", "ABCDEF.0123456789abcdef"), want: []string{"bootstrap token: must have the form [a-z0-9]{6}.[a-z0-9]{16} (value not shown)"}},
		{name: "node --token and --token-file", args: append(seed, "--token", goodToken, "--token-file", "token"), want: []string{"--token and --token-file: give only one"}},
		{name: "node --token without --apiserver-url", args: append(seed, "--token", goodToken), want: []string{"--token needs --apiserver-url"}},
		{name: "node --token-file missing", args: append(seed, "--token-file", "nope"), want: []string{"--token-file: ", "no such file"}},
		{name: "node --kubelet-version malformed", args: with(seed, "--kubelet-version", "1.31"), want: []string{"--kubelet-version / kubernetes.version: must be vMAJOR.MINOR.PATCH"}},
		{name: "node --apiserver-url http", args: append(seed, "--apiserver-url", "http://10.0.0.1:6443"), want: []string{"--apiserver-url / kubernetes.apiServerURL: must be an https:// URL (the API server is only reached over TLS"}},
		{name: "node --apiserver-url http with a node config", args: nodePlan("--apiserver-url", "http://10.0.0.1:6443"), files: map[string]string{"node.yaml": nodeDoc("", "", "")}, want: []string{"--apiserver-url / kubernetes.apiServerURL: must be an https:// URL (the API server is only reached over TLS"}},
		{name: "node --apiserver-url with credentials", args: append(seed, "--apiserver-url", "https://u:pw@10.0.0.1:6443"), want: []string{"--apiserver-url / kubernetes.apiServerURL: must not carry credentials (user:password@): the node authenticates with the bootstrap token"}},
		{name: "node --cloud-provider with a newline", args: append(seed, "--cloud-provider", "external\nExecStartPre=/bin/sh"), want: []string{"--cloud-provider / kubernetes.cloudProvider: must be a provider name"}},
		{name: "node without config or seed", args: []string{"node", "plan", "--root", "root"}, want: []string{"no node config at ", "--kubelet-version"}},
		{name: "node --os unknown", args: append(seed, "--os", "plan9"), want: []string{`"plan9"`, "supported are"}},
		{name: "node join --bundle", args: []string{"node", "join", "--root", "root", "--bundle", "b.tar"}, want: []string{"--bundle and --bundle-sha256 are for base"}},
		{name: "node base --bundle-sha256 without --bundle", args: []string{"node", "base", "--root", "root", "--bundle-sha256", goodSum}, want: []string{"--bundle-sha256 needs --bundle"}},
		// os-release
		{name: "os-release of an unsupported OS", args: seed, files: map[string]string{"root/etc/os-release": "ID=arch\n"}, want: []string{`unsupported OS "arch"`}},
		{name: "os-release with a bad line", args: seed, files: map[string]string{"root/etc/os-release": "ID=debian\nVERSION_ID=12\nnot a key value\n"}, want: []string{"os-release line 3: expected KEY=value"}},
		{name: "os-release without ID", args: seed, files: map[string]string{"root/etc/os-release": "NAME=Linux\nVERSION_ID=1\n"}, want: []string{"os-release has no ID= line"}},
		{name: "os-release missing", args: seed, files: map[string]string{"root/etc/os-release": "-"}, want: []string{"detect OS: ", "pass --os to choose a profile"}},
		{name: "os-release of an unsupported version", args: seed, files: map[string]string{"root/etc/os-release": "ID=ubuntu\nVERSION_ID=\"16.04\"\n"}, want: []string{"ubuntu", "16.04"}},
	}
}

// TestNegativeCases runs every bad input through the built binary: each is
// refused with exit status 1 and its specific error (field or flag, and the
// message); generate writes no output file.
func TestNegativeCases(t *testing.T) {
	fixtures := map[string]string{}
	for _, f := range []string{"token", "ca.crt", "cloud.conf"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "generate", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		fixtures[f] = string(b)
	}
	osr, err := os.ReadFile(filepath.Join("..", "..", "osprofiles", "testdata", "os-release", "debian-12"))
	if err != nil {
		t.Fatal(err)
	}
	cases := badInputs()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"root/etc/os-release": string(osr)}
			for k, v := range fixtures {
				files[k] = v
			}
			for k, v := range tc.files {
				files[k] = v
			}
			for p, c := range files {
				if c == "-" {
					continue
				}
				if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			os.MkdirAll(filepath.Join(dir, "root"), 0o755)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, provisionBin, tc.args...)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1\nstderr: %s", err, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stdout.String(), "PHASE") || strings.Contains(stdout.String(), "#cloud-config") {
				t.Errorf("output despite the error:\n%s", stdout.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
				t.Errorf("generate wrote its output file despite the error")
			}
		})
	}
	t.Logf("%d bad inputs", len(cases))
	if len(cases) < 40 {
		t.Errorf("only %d bad inputs: want at least 40", len(cases))
	}
}
