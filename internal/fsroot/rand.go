package fsroot

import (
	"crypto/rand"
	"encoding/binary"
)

func randSuffix() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}
