// Package testenv builds real test environments for provision's end-to-end tests:
// a cached debootstrapped Debian root unpacked fresh per test onto a tmpfs, a
// network namespace of the test's own, HTTP servers listening inside it, a local
// apt repository, and the root booted with systemd-nspawn.
//
// It is used by tests only. Everything it needs that is missing (root, tools)
// fails the test with what is missing; it never skips. Every process, mount and
// namespace it creates is released in t.Cleanup, also when the test fails.
// Processes are stopped by PID, never by name.
//
// Caches (the root tarball, the apt repository's .debs, built artifacts) live in
// $PROVISION_TEST_CACHE, default /var/cache/provision-test, keyed by their inputs.
package testenv
