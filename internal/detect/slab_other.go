//go:build !linux

package detect

func reserve(int) []byte { return nil }

func unmap([]byte) {}

func discardPages([]byte) {}
