// A verifier of Puente's cosigned checkpoints written from docs/evidence.md §5.3 and the C2SP
// specifications alone (c2sp.org/signed-note, c2sp.org/tlog-checkpoint,
// c2sp.org/tlog-cosignature), with Go's standard library only.
//
// It reads JSON lines {"note": base64 note bytes, "log": log verifier key,
// "witnesses": [cosignature verifier keys]} and answers, per line,
// {"log_ok": bool, "cosigned": {"<name>": <unix seconds>}, "error": "..."}: whether the
// log's Ed25519 signature (type 0x01) verifies, and which witnesses' cosignature/v1
// (type 0x04) lines verify, with their timestamps.
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

type request struct {
	Note      string   `json:"note"`
	Log       string   `json:"log"`
	Witnesses []string `json:"witnesses"`
}

type answer struct {
	LogOK    bool             `json:"log_ok"`
	Cosigned map[string]int64 `json:"cosigned"`
	Error    string           `json:"error,omitempty"`
}

type verifierKey struct {
	name   string
	hash   [4]byte
	alg    byte
	public ed25519.PublicKey
}

// parseKey reads "<name>+<hex key hash>+<base64(alg || 32-byte key)>" and checks the hash:
// the first 4 bytes of SHA-256(name || 0x0A || alg || key).
func parseKey(text string, alg byte) (verifierKey, error) {
	parts := strings.SplitN(text, "+", 3)
	if len(parts) != 3 {
		return verifierKey{}, errors.New("key is not name+hash+key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != alg {
		return verifierKey{}, fmt.Errorf("key %s: not a type %#x Ed25519 key", parts[0], alg)
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if hex.EncodeToString(h[:4]) != parts[1] {
		return verifierKey{}, fmt.Errorf("key %s: key hash does not match", parts[0])
	}
	k := verifierKey{name: parts[0], alg: alg, public: ed25519.PublicKey(raw[1:])}
	copy(k.hash[:], h[:4])
	return k, nil
}

type signature struct {
	name string
	blob []byte
}

// splitNote returns the text (up to and including the newline before the last blank line)
// and the signature lines.
func splitNote(note []byte) ([]byte, []signature, error) {
	i := bytes.LastIndex(note, []byte("\n\n"))
	if i < 0 {
		return nil, nil, errors.New("no signature block")
	}
	text := note[:i+1]
	var sigs []signature
	for _, line := range strings.Split(strings.TrimSuffix(string(note[i+2:]), "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, "\u2014 ")
		if !ok {
			return nil, nil, errors.New("signature line without an em dash")
		}
		name, b64, ok := strings.Cut(rest, " ")
		if !ok {
			return nil, nil, errors.New("signature line is not '— name base64'")
		}
		blob, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(blob) < 5 {
			return nil, nil, errors.New("signature is not base64")
		}
		sigs = append(sigs, signature{name, blob})
	}
	return text, sigs, nil
}

func check(req request) answer {
	out := answer{Cosigned: map[string]int64{}}
	note, err := base64.StdEncoding.DecodeString(req.Note)
	if err != nil {
		out.Error = "note is not base64"
		return out
	}
	text, sigs, err := splitNote(note)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	logKey, err := parseKey(req.Log, 0x01)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	var witnesses []verifierKey
	for _, w := range req.Witnesses {
		k, err := parseKey(w, 0x04)
		if err != nil {
			out.Error = err.Error()
			return out
		}
		witnesses = append(witnesses, k)
	}
	for _, s := range sigs {
		if s.name == logKey.name && bytes.Equal(s.blob[:4], logKey.hash[:]) {
			out.LogOK = len(s.blob) == 4+ed25519.SignatureSize &&
				ed25519.Verify(logKey.public, text, s.blob[4:])
		}
		for _, w := range witnesses {
			if s.name != w.name || !bytes.Equal(s.blob[:4], w.hash[:]) {
				continue
			}
			if len(s.blob) != 4+8+ed25519.SignatureSize {
				continue
			}
			t := binary.BigEndian.Uint64(s.blob[4:12])
			msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", t)
			msg = append(msg, text...)
			if ed25519.Verify(w.public, msg, s.blob[12:]) {
				out.Cosigned[w.name] = int64(t)
			}
		}
	}
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<22)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := enc.Encode(check(req)); err != nil {
			os.Exit(2)
		}
	}
}
