// Command trustlist verifies a chain of Puente trust lists — k-of-n signed C2SP signed notes —
// from docs/evidence.md (§2, §3, §3.1, §5.1) alone, with Go's standard library only.
//
// Usage: trustlist GENESIS [NEXT ...]
//
// The first file is the genesis list (the trust anchor): it must carry signatures of a quorum
// of its own roots. Each following file is judged by the roots and quorum of the last list
// accepted before it, by its own roots and quorum, and must have a higher serial. One JSON
// line per file: {"file", "serial", "valid", "reason", "signers"}. A refused list leaves the
// previous one in force, as a verifier does.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

type key struct {
	name    string
	hash    [4]byte
	pub     ed25519.PublicKey
	holder  string
	usages  []string
	from    int64
	until   int64 // -1: none
	revoked int64 // -1: none
}

func (k key) validAt(t int64) bool {
	return k.from <= t && (k.until < 0 || t < k.until) && (k.revoked < 0 || t < k.revoked)
}

func (k key) isRoot() bool {
	for _, u := range k.usages {
		if u == "trust-list" {
			return true
		}
	}
	return false
}

type list struct {
	serial, issued, expires int64
	quorum                  int // 0: none (a single-root list)
	keys                    []key
}

type sig struct {
	name string
	hash [4]byte
	sig  []byte
}

// splitNote: the text is everything before the last blank line, with its final newline;
// signature lines are "— <name> <base64(4-byte key hash || signature)>".
func splitNote(data []byte) (string, []sig, error) {
	i := bytes.LastIndex(data, []byte("\n\n"))
	if i < 0 {
		return "", nil, errors.New("no signature block")
	}
	text := string(data[:i+1])
	var sigs []sig
	for _, line := range strings.Split(strings.TrimSuffix(string(data[i+2:]), "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, "\u2014 ")
		if !ok {
			return "", nil, errors.New("bad signature line")
		}
		name, b64, ok := strings.Cut(rest, " ")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if !ok || err != nil || len(raw) <= 4 {
			return "", nil, errors.New("bad signature line")
		}
		s := sig{name: name, sig: raw[4:]}
		copy(s.hash[:], raw[:4])
		sigs = append(sigs, s)
	}
	return text, sigs, nil
}

// parseVkey: <name>+<hex key hash>+<base64(0x01 || public key)>, the hash being the first 4
// bytes of SHA-256(name || 0x0A || 0x01 || public key).
func parseVkey(v string) (key, error) {
	parts := strings.SplitN(v, "+", 3) // base64 may contain "+": the key is after the second
	if len(parts) != 3 {
		return key{}, errors.New("bad verifier key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return key{}, errors.New("bad verifier key")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if hex.EncodeToString(h[:4]) != parts[1] {
		return key{}, errors.New("verifier key hash mismatch")
	}
	k := key{name: parts[0], pub: ed25519.PublicKey(raw[1:])}
	copy(k.hash[:], h[:4])
	return k, nil
}

func optMs(s string) (int64, error) {
	if s == "-" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

func parseList(text string) (list, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var l list
	if len(lines) < 4 || lines[0] != "puente.trust-list" {
		return l, errors.New("not a trust list")
	}
	var err error
	for i, f := range []*int64{&l.serial, &l.issued, &l.expires} {
		name := []string{"serial ", "issued-ms ", "expires-ms "}[i]
		v, ok := strings.CutPrefix(lines[1+i], name)
		if !ok {
			return l, errors.New("expected " + name)
		}
		if *f, err = strconv.ParseInt(v, 10, 64); err != nil {
			return l, err
		}
	}
	for _, line := range lines[4:] {
		f := strings.Split(line, " ")
		switch f[0] {
		case "quorum":
			if l.quorum, err = strconv.Atoi(f[1]); err != nil {
				return l, err
			}
		case "key":
			if len(f) != 7 {
				return l, errors.New("bad key line")
			}
			k, err := parseVkey(f[1])
			if err != nil {
				return l, err
			}
			k.holder, k.usages = f[2], strings.Split(f[3], ",")
			if k.from, err = strconv.ParseInt(f[4], 10, 64); err != nil {
				return l, err
			}
			if k.until, err = optMs(f[5]); err != nil {
				return l, err
			}
			if k.revoked, err = optMs(f[6]); err != nil {
				return l, err
			}
			l.keys = append(l.keys, k)
		}
	}
	return l, nil
}

// signers: the holders of roots (of `roots`, valid at t) whose signatures verify. A root's
// signature that fails rejects the note; signatures by other keys are ignored.
func signers(text string, sigs []sig, roots []key, t int64) (map[string]bool, error) {
	found := map[string]bool{}
	for _, s := range sigs {
		for _, k := range roots {
			if !k.isRoot() || s.name != k.name || s.hash != k.hash {
				continue
			}
			if !ed25519.Verify(k.pub, []byte(text), s.sig) {
				return nil, fmt.Errorf("the signature of %s fails", k.name)
			}
			if k.validAt(t) {
				found[k.holder] = true
			}
		}
	}
	return found, nil
}

type result struct {
	File    string   `json:"file"`
	Serial  int64    `json:"serial"`
	Valid   bool     `json:"valid"`
	Reason  string   `json:"reason,omitempty"`
	Signers []string `json:"signers"`
}

// judge: a quorum of the previous list's roots (the anchor) and of its own; higher serial.
func judge(data []byte, prev *list) (list, result) {
	var r result
	text, sigs, err := splitNote(data)
	if err != nil {
		r.Reason = "unsigned: " + err.Error()
		return list{}, r
	}
	l, err := parseList(text)
	if err != nil {
		r.Reason = "malformed: " + err.Error()
		return l, r
	}
	r.Serial = l.serial
	if l.quorum == 0 {
		r.Reason = "names no quorum"
		return l, r
	}
	anchor := &l // the genesis list is judged by its own roots
	if prev != nil {
		anchor = prev
	}
	for _, j := range []*list{anchor, &l} {
		got, err := signers(text, sigs, j.keys, l.issued)
		if err != nil {
			r.Reason = err.Error()
			return l, r
		}
		r.Signers = r.Signers[:0]
		for h := range got {
			r.Signers = append(r.Signers, h)
		}
		sort.Strings(r.Signers)
		if len(got) < j.quorum {
			r.Reason = fmt.Sprintf("quorum missing: %d of %d", len(got), j.quorum)
			return l, r
		}
	}
	if prev != nil && l.serial <= prev.serial {
		r.Reason = "serial not higher than the list in force"
		return l, r
	}
	r.Valid = true
	return l, r
}

func main() {
	var current *list
	enc := json.NewEncoder(os.Stdout)
	for i, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		l, r := judge(data, current)
		if i > 0 && current == nil { // no genesis: nothing after it can be judged
			r = result{Serial: l.serial, Reason: "no trusted genesis list"}
		}
		r.File = path
		if r.Signers == nil {
			r.Signers = []string{}
		}
		if r.Valid {
			current = &l
		}
		if err := enc.Encode(r); err != nil {
			os.Exit(2)
		}
	}
}
