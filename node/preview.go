package node

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/provision-dev/provision/node/tasks"
)

// PlanEntry is one line of a plan.
type PlanEntry struct {
	Phase Phase
	tasks.Status
}

// Plan runs the phases dry: nothing is applied.
func (n *Node) Plan(ctx context.Context, phases ...Phase) ([]PlanEntry, error) {
	var out []PlanEntry
	defer func() { n.baseInPlan = false }()
	for _, p := range phases {
		n.baseInPlan = n.baseInPlan || p == Base
		list, err := n.Tasks(p)
		if err != nil {
			return out, err
		}
		sts, err := tasks.Execute(ctx, n.Env, list, true)
		for _, s := range sts {
			out = append(out, PlanEntry{Phase: p, Status: s})
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// WritePlan prints a plan as a table: phase, would-change/no-change/skip, task, detail.
func (n *Node) WritePlan(w io.Writer, entries []PlanEntry) error {
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
