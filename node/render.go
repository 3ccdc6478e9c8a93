package node

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/pelletier/go-toml/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/node/nodeconfig"
)

// CacheDir is where downloaded archives wait to be extracted (internal/artifacts).
const CacheDir = artifacts.CacheDir

// Well-known node paths written by node.
const (
	ContainerdConfigPath = "/etc/containerd/config.toml"
	ContainerdCertsDir   = "/etc/containerd/certs.d"
	ContainerdSocket     = "unix:///run/containerd/containerd.sock"
	CrictlConfigPath     = "/etc/crictl.yaml"
	CNIBinDir            = "/opt/cni/bin"
	CNIConfDir           = "/etc/cni/net.d"
	KubeletConfigPath    = "/var/lib/kubelet/config.yaml"
	KubeletUnitPath      = "/etc/systemd/system/kubelet.service"
	KubeletDropInPath    = "/etc/systemd/system/kubelet.service.d/10-provision.conf"
	SysctlPath           = "/etc/sysctl.d/99-provision-kubernetes.conf"
	ModulesPath          = "/etc/modules-load.d/provision-kubernetes.conf"
	AptSourcePath        = "/etc/apt/sources.list.d/provision.sources"
	YumRepoPath          = "/etc/yum.repos.d/provision.repo"
	YumRepoID            = "provision"
	DockerDaemonPath     = "/etc/docker/daemon.json"
	StateDir             = "/var/lib/provision"
	KubeletHealthzURL    = "http://127.0.0.1:10248/healthz"
	// KubeletClientCertPath is the client certificate the kubelet's TLS bootstrap ends with.
	KubeletClientCertPath = "/var/lib/kubelet/pki/kubelet-client-current.pem"
)

// bootstrapRefusalGrace is how long the API server may refuse the bootstrap
// token (a token created a moment ago may not be known to it yet) before join fails.
const bootstrapRefusalGrace = 10 * time.Second

// Sysctls are the kernel parameters kubelet and most CNI plugins need.
var Sysctls = map[string]string{
	"net.bridge.bridge-nf-call-iptables":  "1",
	"net.bridge.bridge-nf-call-ip6tables": "1",
	"net.ipv4.ip_forward":                 "1",
}

// Modules are the kernel modules containerd and bridged CNI need.
var Modules = []string{"overlay", "br_netfilter"}

func renderSysctl() []byte {
	keys := make([]string, 0, len(Sysctls))
	for k := range Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# Written by provision: kernel parameters for Kubernetes.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, Sysctls[k])
	}
	return b.Bytes()
}

func renderModules() []byte {
	return []byte("# Written by provision: kernel modules for Kubernetes.\n" + strings.Join(Modules, "\n") + "\n")
}

// deb822 renders one deb822 stanza; values are checked for line breaks.
func deb822(fields [][2]string) ([]byte, error) {
	var b bytes.Buffer
	for _, f := range fields {
		if strings.ContainsAny(f[1], "\r\n") || f[1] == "" {
			return nil, fmt.Errorf("deb822 field %s: value must be one non-empty line", f[0])
		}
		fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
	}
	return b.Bytes(), nil
}

func renderAptSource(a *nodeconfig.AptRepository) ([]byte, error) {
	fields := [][2]string{{"Types", "deb"}, {"URIs", a.URL}, {"Suites", a.Suite}, {"Components", strings.Join(a.Components, " ")}}
	switch {
	case a.SignedBy != "":
		fields = append(fields, [2]string{"Signed-By", a.SignedBy})
	case a.Trusted:
		fields = append(fields, [2]string{"Trusted", "yes"})
	}
	return deb822(fields)
}

// ini renders one INI section (yum .repo); values are checked for line breaks.
func ini(section string, kvs [][2]string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "[%s]\n", section)
	for _, kv := range kvs {
		if strings.ContainsAny(kv[1], "\r\n") {
			return nil, fmt.Errorf("repo option %s: value must be one line", kv[0])
		}
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	return b.Bytes(), nil
}

func renderYumRepo(y *nodeconfig.YumRepository) ([]byte, error) {
	kvs := [][2]string{{"name", "provision package mirror"}, {"baseurl", y.BaseURL}, {"enabled", "1"}}
	if y.GPGKey != "" {
		kvs = append(kvs, [2]string{"gpgcheck", "1"}, [2]string{"gpgkey", y.GPGKey})
	} else {
		kvs = append(kvs, [2]string{"gpgcheck", "0"})
	}
	return ini(YumRepoID, kvs)
}

// renderContainerdConfig builds containerd's config.toml (version 2) as a tree.
func renderContainerdConfig(c nodeconfig.Containerd, inContainer bool) ([]byte, error) {
	sandbox := c.SandboxImage
	if sandbox == "" {
		sandbox = nodeconfig.DefaultSandboxImage
	}
	cri := map[string]any{
		"sandbox_image": sandbox,
		"containerd": map[string]any{
			"default_runtime_name": "runc",
			"runtimes": map[string]any{
				"runc": map[string]any{
					"runtime_type": "io.containerd.runc.v2",
					"options":      map[string]any{"SystemdCgroup": true},
				},
			},
		},
		"registry": map[string]any{"config_path": ContainerdCertsDir},
		"cni":      map[string]any{"bin_dir": CNIBinDir, "conf_dir": CNIConfDir},
	}
	if inContainer {
		// A container lacks CAP_SYS_RESOURCE: containerd may not lower oom_score_adj.
		cri["restrict_oom_score_adj"] = true
	}
	tree := map[string]any{
		"version": 2,
		"plugins": map[string]any{"io.containerd.grpc.v1.cri": cri},
	}
	out, err := toml.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("marshal containerd config: %w", err)
	}
	return append([]byte("# Written by provision.\n"), out...), nil
}

// registryServer is the upstream endpoint of a registry host in hosts.toml.
func registryServer(host string) string {
	if host == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + host
}

// renderHostsTOML builds certs.d/<host>/hosts.toml: mirrors are tried in order,
// so each [host."..."] table is marshalled on its own and appended in order.
func renderHostsTOML(host string, mirrors []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Written by provision: mirrors of " + host + ", tried in order.\n")
	head, err := toml.Marshal(map[string]any{"server": registryServer(host)})
	if err != nil {
		return nil, err
	}
	b.Write(head)
	for _, m := range mirrors {
		t, err := toml.Marshal(map[string]any{"host": map[string]any{m: map[string]any{"capabilities": []string{"pull", "resolve"}}}})
		if err != nil {
			return nil, err
		}
		b.WriteString("\n")
		b.Write(t)
	}
	return b.Bytes(), nil
}

type crictlConfig struct {
	RuntimeEndpoint string `json:"runtime-endpoint"`
	ImageEndpoint   string `json:"image-endpoint"`
	Timeout         int    `json:"timeout"`
}

func renderCrictl() ([]byte, error) {
	return yaml.Marshal(crictlConfig{RuntimeEndpoint: ContainerdSocket, ImageEndpoint: ContainerdSocket, Timeout: 10})
}

func renderDockerDaemon() ([]byte, error) {
	return jsonMarshal(map[string]any{"exec-opts": []string{"native.cgroupdriver=systemd"}, "log-driver": "json-file", "log-opts": map[string]string{"max-size": "100m"}})
}

// kubeletMinor returns MINOR of vMAJOR.MINOR.PATCH (validated by nodeconfig).
func kubeletMinor(v string) int {
	var major, minor, patch int
	fmt.Sscanf(v, "v%d.%d.%d", &major, &minor, &patch)
	return minor
}

// renderKubeletConfig builds the KubeletConfiguration from the upstream types.
func renderKubeletConfig(k nodeconfig.Kubernetes) ([]byte, error) {
	t, f := true, false
	cfg := kubeletv1beta1.KubeletConfiguration{
		TypeMeta:           metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		CgroupDriver:       "systemd",
		RotateCertificates: true,
		ServerTLSBootstrap: true,
		Authentication: kubeletv1beta1.KubeletAuthentication{
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: k.CACertPath},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: &t, CacheTTL: metav1.Duration{Duration: 2 * time.Minute}},
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: &f},
		},
		Authorization: kubeletv1beta1.KubeletAuthorization{
			Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook,
			Webhook: kubeletv1beta1.KubeletWebhookAuthorization{
				CacheAuthorizedTTL:   metav1.Duration{Duration: 5 * time.Minute},
				CacheUnauthorizedTTL: metav1.Duration{Duration: 30 * time.Second},
			},
		},
		ReadOnlyPort:       0,
		HealthzBindAddress: "127.0.0.1",
		HealthzPort:        ptr(int32(10248)),
		ClusterDNS:         k.ClusterDNS,
		ClusterDomain:      k.ClusterDomain,
		EvictionHard: map[string]string{
			"memory.available":  "100Mi",
			"nodefs.available":  "10%",
			"nodefs.inodesFree": "5%",
			"imagefs.available": "15%",
		},
		KubeReserved:   map[string]string{"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
		SystemReserved: map[string]string{"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
		FailSwapOn:     &t,
	}
	if kubeletMinor(k.Version) >= 27 {
		cfg.ContainerRuntimeEndpoint = ContainerdSocket
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal KubeletConfiguration: %w", err)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// systemdQuote quotes one ExecStart argument so systemd reads it back verbatim:
// double quotes when needed, with \ and " escaped, % and $ doubled.
func systemdQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func execLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = systemdQuote(a)
	}
	return strings.Join(q, " ")
}

func serializeUnit(opts []*unit.UnitOption) []byte {
	b, _ := io.ReadAll(unit.Serialize(opts))
	return append([]byte("# Written by provision.\n"), b...)
}
