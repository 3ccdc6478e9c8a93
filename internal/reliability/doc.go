// Package reliability holds the fault, crash-consistency, negative-input and
// secret-hygiene tests that run the built provision binary as a subprocess (see
// the *_test.go files). It has no non-test code.
package reliability
