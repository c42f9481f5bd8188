// Command hpke opens (and makes) Puente's sealed envelopes with Go's standard library only
// (crypto/hpke, Go 1.26; crypto/aes and crypto/cipher for batch-sealed deliveries), from what
// docs/evidence.md §9 describes: the key texts, the envelope layout and the info and AAD
// constructions. It shares no code with Puente.
//
// It reads JSON requests, one per line, on standard input and answers each with one JSON line:
//
//	{"op":"open-delivery","key":"PRIVATE+KEY+...","envelope":"<base64>","notice_id":"...",
//	 "recipient":"GT","delivery_id":"...","fingerprint":"<16 hex>"}   (kind 0x01 or 0x04)
//	{"op":"open-notice","key":"PRIVATE+KEY+...","envelope":"<base64>","origin":"MX"}
//	{"op":"seal-delivery","key":"<name>+<hash>+<base64>","plaintext":"<base64>", ...binding}
//	{"op":"seal-notice","key":"<name>+<hash>+<base64>","plaintext":"<base64>","origin":"MX"}
//	{"op":"seal-batch","key":"<name>+<hash>+<base64>","recipient":"GT","deliveries":[
//	 {"plaintext":"<base64>","notice_id":"...","delivery_id":"...","fingerprint":"..."}, ...]}
//
// answer: {"ok":true,"plaintext":"<base64>"} or {"ok":true,"envelope":"<base64>"} or
// {"ok":true,"envelopes":["<base64>", ...]} (seal-batch: kind 0x04, one data key) or
// {"ok":false,"error":"..."}.
package main

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
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

const (
	algX25519     = 0x20
	headerSize    = 44 // magic 2, version 1, kind 1, key id 8, enc 32
	kindDelivery  = 0x01
	kindNotice    = 0x02
	kindBatch     = 0x04 // a delivery payload under its (batch, recipient)'s data key
	batchHeader   = 104  // headerSize, the sealed data key 32+16, the nonce 12
	privatePrefix = "PRIVATE+KEY+"
)

type request struct {
	Op          string    `json:"op"`
	Key         string    `json:"key"`
	Envelope    string    `json:"envelope"`
	Plaintext   string    `json:"plaintext"`
	NoticeID    string    `json:"notice_id"`
	Recipient   string    `json:"recipient"`
	DeliveryID  string    `json:"delivery_id"`
	Fingerprint string    `json:"fingerprint"`
	Origin      string    `json:"origin"`
	Deliveries  []request `json:"deliveries"`
}

type response struct {
	OK        bool     `json:"ok"`
	Plaintext []byte   `json:"plaintext,omitempty"`
	Envelope  []byte   `json:"envelope,omitempty"`
	Envelopes [][]byte `json:"envelopes,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// keyText splits "<name>+<hex key hash>+<base64(0x20 || 32 bytes)>" and returns the name,
// the hash and the 32 key bytes.
func keyText(text string) (string, string, []byte, error) {
	parts := strings.SplitN(strings.TrimSpace(text), "+", 3)
	if len(parts) != 3 {
		return "", "", nil, errors.New("key text is not name+hash+base64")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return "", "", nil, err
	}
	if len(raw) != 33 || raw[0] != algX25519 {
		return "", "", nil, errors.New("not an X25519 key (algorithm byte 0x20)")
	}
	return parts[0], parts[1], raw[1:], nil
}

// keyID is the first 8 bytes of SHA-256(name || 0x0A || 0x20 || public key); its first 4 are
// the key hash of the key text.
func keyID(name string, public []byte) []byte {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0x0A, algX25519})
	h.Write(public)
	return h.Sum(nil)[:8]
}

func field(b []byte) []byte {
	out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	return append(out, b...)
}

// binding is a delivery's context string and fields: kind 0x01's info, kind 0x04's AAD.
func binding(context string, r request, kid []byte) ([]byte, error) {
	fp, err := hex.DecodeString(r.Fingerprint)
	if err != nil || len(fp) != 8 {
		return nil, errors.New("fingerprint: 16 hex digits")
	}
	out := []byte(context)
	for _, f := range [][]byte{kid, []byte(r.NoticeID), []byte(r.Recipient), []byte(r.DeliveryID), fp} {
		out = append(out, field(f)...)
	}
	return out, nil
}

func info(r request, kind byte, kid []byte) ([]byte, error) {
	switch kind {
	case kindDelivery:
		return binding("puente/sealed-delivery/v1\x00", r, kid)
	case kindBatch: // the info of the data key's seal
		out := []byte("puente/sealed-batch-key/v1\x00")
		return append(append(out, field(kid)...), field([]byte(r.Recipient))...), nil
	case kindNotice:
		out := []byte("puente/sealed-notice/v1\x00")
		return append(append(out, field(kid)...), field([]byte(r.Origin))...), nil
	}
	return nil, fmt.Errorf("unknown kind %d", kind)
}

func open(r request, kind byte) ([]byte, error) {
	if !strings.HasPrefix(r.Key, privatePrefix) {
		return nil, errors.New("a private key text starts with PRIVATE+KEY+")
	}
	name, hash, raw, err := keyText(strings.TrimPrefix(r.Key, privatePrefix))
	if err != nil {
		return nil, err
	}
	priv, err := ecdh.X25519().NewPrivateKey(raw)
	if err != nil {
		return nil, err
	}
	kid := keyID(name, priv.PublicKey().Bytes())
	if hex.EncodeToString(kid[:4]) != hash {
		return nil, errors.New("key hash does not match the key")
	}
	env, err := base64.StdEncoding.DecodeString(r.Envelope)
	if err != nil {
		return nil, err
	}
	if len(env) < headerSize+16 || !bytes.Equal(env[:2], []byte("PS")) || env[2] != 0x01 {
		return nil, errors.New("not a version 1 sealed envelope")
	}
	if kind == kindDelivery && env[3] == kindBatch {
		kind = kindBatch
	}
	if env[3] != kind {
		return nil, fmt.Errorf("envelope kind %d, want %d", env[3], kind)
	}
	if !bytes.Equal(env[4:12], kid) {
		return nil, errors.New("the envelope names another key")
	}
	inf, err := info(r, kind, kid)
	if err != nil {
		return nil, err
	}
	k, err := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(raw)
	if err != nil {
		return nil, err
	}
	if kind != kindBatch {
		// enc || ciphertext, exactly what hpke.Open takes.
		return hpke.Open(k, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), inf, env[12:])
	}
	if len(env) < batchHeader+16 {
		return nil, errors.New("a batch-sealed envelope cut short")
	}
	// enc || the sealed data key, then AES-256-GCM with the nonce and the delivery's AAD.
	dataKey, err := hpke.Open(k, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), inf, env[12:92])
	if err != nil {
		return nil, err
	}
	gcm, err := aesGCM(dataKey)
	if err != nil {
		return nil, err
	}
	aad, err := binding("puente/sealed-batch-delivery/v1\x00", r, kid)
	if err != nil {
		return nil, err
	}
	return gcm.Open(nil, env[92:104], env[104:], aad)
}

func aesGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key) // 32 bytes: AES-256
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealBatch seals r.Deliveries to r.Recipient as one batch: one data key, sealed once.
func sealBatch(r request) ([][]byte, error) {
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, err
	}
	head, err := seal(request{Key: r.Key, Recipient: r.Recipient, Plaintext: base64.StdEncoding.EncodeToString(dataKey)}, kindBatch)
	if err != nil {
		return nil, err
	}
	gcm, err := aesGCM(dataKey)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for i, d := range r.Deliveries {
		d.Recipient = r.Recipient
		aad, err := binding("puente/sealed-batch-delivery/v1\x00", d, head[4:12])
		if err != nil {
			return nil, err
		}
		plaintext, err := base64.StdEncoding.DecodeString(d.Plaintext)
		if err != nil {
			return nil, err
		}
		nonce := binary.BigEndian.AppendUint64(make([]byte, 4), uint64(i))
		env := append(append(bytes.Clone(head), nonce...), gcm.Seal(nil, nonce, plaintext, aad)...)
		out = append(out, env)
	}
	return out, nil
}

func seal(r request, kind byte) ([]byte, error) {
	name, hash, raw, err := keyText(r.Key)
	if err != nil {
		return nil, err
	}
	kid := keyID(name, raw)
	if hex.EncodeToString(kid[:4]) != hash {
		return nil, errors.New("key hash does not match the key")
	}
	pub, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(raw)
	if err != nil {
		return nil, err
	}
	inf, err := info(r, kind, kid)
	if err != nil {
		return nil, err
	}
	plaintext, err := base64.StdEncoding.DecodeString(r.Plaintext)
	if err != nil {
		return nil, err
	}
	sealed, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), inf, plaintext)
	if err != nil {
		return nil, err
	}
	env := append([]byte{'P', 'S', 0x01, kind}, kid...)
	return append(env, sealed...), nil
}

func handle(r request) response {
	var out []byte
	var err error
	switch r.Op {
	case "open-delivery":
		out, err = open(r, kindDelivery)
	case "open-notice":
		out, err = open(r, kindNotice)
	case "seal-delivery":
		out, err = seal(r, kindDelivery)
	case "seal-notice":
		out, err = seal(r, kindNotice)
	case "seal-batch":
		var envs [][]byte
		if envs, err = sealBatch(r); err == nil {
			return response{OK: true, Envelopes: envs}
		}
	default:
		err = fmt.Errorf("unknown op %q", r.Op)
	}
	if err != nil {
		return response{Error: err.Error()}
	}
	if strings.HasPrefix(r.Op, "open") {
		return response{OK: true, Plaintext: out}
	}
	return response{OK: true, Envelope: out}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			os.Exit(2)
		}
		if err := enc.Encode(handle(r)); err != nil {
			os.Exit(2)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
