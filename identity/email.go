package identity

// SameEmail reports whether a and b are the same address, ignoring ASCII
// case, which is how the approver's sign-in is matched to a link's
// recipient. Only ASCII letters fold: Unicode folding would let look-alikes
// match (the Kelvin sign U+212A folds to "k"). An empty address matches
// nothing.
func SameEmail(a, b string) bool {
	if a == "" || len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
