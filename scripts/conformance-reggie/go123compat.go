//go:build ignore

// Copied by scripts/conformance.sh into the newest OCI conformance suite (which asks for
// Go 1.24) when it is built with an older Go (Debian bookworm-backports has 1.23), after the
// script rewrites the suite's two Go 1.24 calls: crypto/rand.Text() -> randText() and
// strings.SplitSeq(...) -> stringsSplitSeq(...). Our own code, same behaviour as Go 1.24's:
// randText is 26 base32 characters (128 bits) from crypto/rand; stringsSplitSeq yields the
// pieces strings.Split returns. The build tag above keeps it out of any other build; the
// script strips it.

package main

import (
	"crypto/rand"
	"encoding/base32"
	"iter"
	"strings"
)

func randText() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)[:26]
}

func stringsSplitSeq(s, sep string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, part := range strings.Split(s, sep) {
			if !yield(part) {
				return
			}
		}
	}
}
