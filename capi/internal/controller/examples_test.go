package controller_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/controller"
	"github.com/provision-dev/provision/capi/internal/validators"
)

// TestExamples: every object of capi/examples passes the real CRDs'
// validation (server-side dry run), the MachineDeployments point at a
// template of the same file, and each template's spec renders through the
// controller into userdata provision's validators accept.
func TestExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(env.Root, "capi", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		templates := map[string]bootstrapv1.ProvisionConfigTemplate{}
		var deployments []clusterv1.MachineDeployment
		dec := utilyaml.NewYAMLReader(bufioReader(raw))
		for {
			doc, err := dec.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil || len(u.Object) == 0 {
				continue
			}
			u.SetNamespace(f.ns)
			if err := f.c.Create(f.ctx, u, client.DryRunAll); err != nil {
				t.Errorf("%s: %s %s: the API server refuses it: %v", filepath.Base(file), u.GetKind(), u.GetName(), err)
			}
			switch u.GetKind() {
			case "ProvisionConfigTemplate":
				var tmpl bootstrapv1.ProvisionConfigTemplate
				if err := yaml.UnmarshalStrict(doc, &tmpl); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				templates[tmpl.Name] = tmpl
			case "MachineDeployment":
				var md clusterv1.MachineDeployment
				if err := yaml.UnmarshalStrict(doc, &md); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				deployments = append(deployments, md)
			}
		}
		if len(deployments) == 0 {
			t.Errorf("%s: no MachineDeployment", file)
		}
		for _, md := range deployments {
			ref := md.Spec.Template.Spec.Bootstrap.ConfigRef
			tmpl, ok := templates[ref.Name]
			if !ok || ref.APIGroup != bootstrapv1.GroupVersion.Group || ref.Kind != "ProvisionConfigTemplate" {
				t.Fatalf("%s: MachineDeployment %s: configRef %+v is not a ProvisionConfigTemplate of the file", file, md.Name, ref)
			}
			// What Cluster API's MachineSet controller does per Machine.
			m := f.machine(md.Name+"-abcde", md.Spec.Template.Spec.Version)
			pc := f.config(m.Name, m, "Machine", tmpl.Spec.Template.Spec)
			pc = f.waitConfig(pc.Name, "rendered", 30*time.Second, dataSecretCreated)
			s := f.secret(f.ns, pc.Status.DataSecretName)
			validators.Userdata(t, string(s.Data["format"]), s.Data["value"])
		}
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
