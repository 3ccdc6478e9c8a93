package osprofiles

// WithRuntime returns p with containerd coming from src (a node config's
// containerd.install, validated against p first: v1alpha1's ValidateProfile),
// or p itself when src is empty. Everything that asks a profile where
// containerd comes from (packages, artifacts, builders, bundles) then sees the
// node's choice.
func (p Profile) WithRuntime(src RuntimeSource) Profile {
	if src != "" {
		p.Runtime = src
	}
	return p
}
