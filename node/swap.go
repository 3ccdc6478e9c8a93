package node

import "github.com/provision-dev/provision/node/tasks"

func swapBuilder(n *Node) ([]tasks.Task, error) {
	return []tasks.Task{
		&tasks.SwapOff{TaskName: "swap/off"},
		&tasks.EditFile{TaskName: "swap/fstab", Path: "/etc/fstab", Edit: tasks.CommentSwap, What: "comment out swap entries"},
		&tasks.Symlink{TaskName: "swap/mask-swap-target", Path: "/etc/systemd/system/swap.target", Target: "/dev/null"},
	}, nil
}
