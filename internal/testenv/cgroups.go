package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// cgroupRoot is where the host's cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupTops lists the directories at the top of every cgroup hierarchy
// (e.g. /sys/fs/cgroup/systemd/payload), to find what a machine left behind.
func cgroupTops() map[string]bool {
	tops := map[string]bool{}
	hierarchies, _ := os.ReadDir(cgroupRoot)
	for _, h := range hierarchies {
		if !h.IsDir() {
			continue
		}
		entries, _ := os.ReadDir(filepath.Join(cgroupRoot, h.Name()))
		for _, e := range entries {
			if e.IsDir() {
				tops[filepath.Join(cgroupRoot, h.Name(), e.Name())] = true
			}
		}
	}
	return tops
}

// removeNewCgroups removes the cgroup trees created at the top of the host's
// hierarchies since before (systemd-nspawn's payload/supervisor, kubelet's
// kubepods), deepest first. It only rmdirs: a cgroup still holding a process
// is not empty and stays. It returns what could not be removed.
func removeNewCgroups(before map[string]bool) []string {
	var left []string
	for top := range cgroupTops() {
		if before[top] {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			if err := os.Remove(d); err != nil {
				left = append(left, d+": "+err.Error())
			}
		}
	}
	return left
}
