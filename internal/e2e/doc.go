// Package e2e holds provision's end-to-end tests: real runs in a debootstrapped,
// systemd-booted Debian root inside a network namespace the test creates (see
// internal/testenv). They are built only with the e2e tag and must run as root:
//
//	go test -tags e2e -v ./internal/e2e/...
//
// A machine without the tools fails them loudly (hack/e2e-prereqs.sh installs them).
package e2e
