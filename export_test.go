package latchkey

// KeyMaterial returns every decrypted key of e (signing seeds and private
// keys, rotation and tag keys), for tests that scan storage and logs for
// leaked secrets.
func KeyMaterial(e *Engine) [][]byte {
	r := e.keys.current()
	var out [][]byte
	for _, k := range r.signing {
		out = append(out, k.priv.Seed(), k.priv)
	}
	for _, k := range r.rotation {
		out = append(out, k)
	}
	for _, k := range r.tag {
		out = append(out, k.key)
	}
	return out
}

// ChainSecrets returns the secret inside a refresh token and the next ahead
// secrets of its chain (derived with the current rotation key), whether or
// not they were ever issued.
func ChainSecrets(e *Engine, token string, ahead int) [][]byte {
	b, err := tokenEncoding.DecodeString(token[len(tokenPrefix):])
	if err != nil {
		panic(err)
	}
	var t refreshToken
	copy(t.sessionID[:], b[1:17])
	t.generation = uint64(b[17])<<56 | uint64(b[18])<<48 | uint64(b[19])<<40 | uint64(b[20])<<32 |
		uint64(b[21])<<24 | uint64(b[22])<<16 | uint64(b[23])<<8 | uint64(b[24])
	copy(t.secret[:], b[25:25+secretLen])
	_, key := e.keys.current().currentRotation()
	out := [][]byte{append([]byte(nil), t.secret[:]...)}
	s := t.secret
	for g := t.generation + 1; g <= t.generation+uint64(ahead); g++ {
		s = nextSecret(key, t.sessionID, g, s)
		out = append(out, append([]byte(nil), s[:]...))
	}
	return out
}
