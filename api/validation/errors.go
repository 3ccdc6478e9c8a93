// Package validation holds what every provision config shares when it checks
// its input: the field path an error names, the one error type (FieldError,
// collected as Errors) and the small validators both the GenerateConfig and the
// NodeConfig reuse (URL, sha256, version, hostname, CA, SSH key, ...).
//
// Validators return "" when the value is fine and otherwise the message, which
// names the allowed form. A message quotes a value only through Quote, and a
// validator of a secret never quotes it at all.
package validation

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Path is a field's path in a document, e.g. "kubernetes.clusterDNS[0]" or
// "containerd.registryMirrors[docker.io]"; "" is the document itself.
type Path string

// Child is the path of field name inside p.
func (p Path) Child(name string) Path {
	if p == "" {
		return Path(name)
	}
	return p + "." + Path(name)
}

// Index is the path of element i of the list at p.
func (p Path) Index(i int) Path { return Path(fmt.Sprintf("%s[%d]", p, i)) }

// Key is the path of key k of the map at p.
func (p Path) Key(k string) Path { return Path(fmt.Sprintf("%s[%s]", p, k)) }

// FieldError is one problem with one input: the field's path in its document,
// the command-line flag that sets it (empty for config-only fields) and what is
// wrong, naming the allowed form. Message never quotes a secret.
type FieldError struct {
	// Field is the path in the document, e.g. "kubeletVersion" or "artifacts.kubelet.url".
	Field string
	// Flag is the command-line flag, e.g. "--kubelet-version"; empty for config-only fields.
	Flag    string
	Message string
}

func (e FieldError) Error() string {
	if e.Flag == "" {
		return e.Field + ": " + e.Message
	}
	return e.Flag + " / " + e.Field + ": " + e.Message
}

// Errors is every problem found; Error joins them one per line.
type Errors []FieldError

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Add records a problem at p.
func (es *Errors) Add(p Path, format string, a ...any) {
	*es = append(*es, FieldError{Field: string(p), Message: fmt.Sprintf(format, a...)})
}

// Check records msg at p unless it is empty (a validator's "fine").
func (es *Errors) Check(p Path, msg string) {
	if msg != "" {
		*es = append(*es, FieldError{Field: string(p), Message: msg})
	}
}

// Append adds every error of more.
func (es *Errors) Append(more Errors) { *es = append(*es, more...) }

// Err returns es as an error, or nil when there is none.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// SortByField orders es by field path (stable), for a deterministic report.
func (es Errors) SortByField() {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Field < es[j].Field })
}

// AsErrors extracts the field errors err holds, if any.
func AsErrors(err error) (Errors, bool) {
	var es Errors
	ok := errors.As(err, &es)
	return es, ok
}
