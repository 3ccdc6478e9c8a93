package node

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/provision-dev/provision/node/tasks"
)

// "Preview" is node's dry run (`provision node plan`, `--dry-run`): every task
// checks the actual state and says what it would change, nothing is applied.
// The Go concept is not called "plan": that word names the neutral userdata
// model generate renders (generate/plan, "one plan, three renderers").

// PreviewEntry is one line of a preview.
type PreviewEntry struct {
	Phase Phase
	tasks.Status
}

// Preview runs the phases dry: nothing is applied. A join previewed after base
// is not refused by the base-done marker (base would rewrite it first).
func (n *Node) Preview(ctx context.Context, phases ...Phase) ([]PreviewEntry, error) {
	var out []PreviewEntry
	baseFirst := false
	for _, p := range phases {
		if p == Join && !baseFirst {
			if err := n.checkBaseDone(); err != nil {
				return out, err
			}
		}
		baseFirst = baseFirst || p == Base
		list, err := n.Tasks(p)
		if err != nil {
			return out, err
		}
		sts, err := tasks.Execute(ctx, n.Env, list, true)
		for _, s := range sts {
			out = append(out, PreviewEntry{Phase: p, Status: s})
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// WritePreview prints a preview as a table: phase, would-change/no-change/skip, task, detail.
func (n *Node) WritePreview(w io.Writer, entries []PreviewEntry) error {
	fmt.Fprintf(w, "# provision node plan: profile %s (from %s), kubelet %s, arch %s\n",
		n.Profile.Name, n.ProfileSource, n.Config.Kubernetes.Version, n.Config.Arch)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tRESULT\tTASK\tDETAIL")
	for _, e := range entries {
		res := map[tasks.Result]string{tasks.Changed: "would-change", tasks.Unchanged: "no-change", tasks.Skipped: "skip", tasks.Failed: "fail"}[e.Result]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Phase, res, e.Name, e.Detail)
	}
	return tw.Flush()
}
