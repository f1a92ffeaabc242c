package spool

import "syscall"

// geometry returns the allocation block of dir's filesystem and its size.
func geometry(dir string) (block, size int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	block = int64(st.Frsize)
	if block <= 0 {
		block = int64(st.Bsize)
	}
	return block, int64(st.Blocks) * block, nil
}
