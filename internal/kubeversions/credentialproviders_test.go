package kubeversions

import "testing"

// TestCredentialProviders: the kubelet reads a v1 CredentialProviderConfig
// from 1.26 (GA) on; older rows of the table do not offer it.
func TestCredentialProviders(t *testing.T) {
	for _, r := range table {
		if got, want := r.CredentialProviders(), r.Minor >= 26; got != want {
			t.Errorf("%s: CredentialProviders() = %v, want %v", r, got, want)
		}
	}
}
