package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strings"
)

// natsUserJWTBlock starts the user JWT in a .creds file.
const natsUserJWTBlock = "-----BEGIN NATS USER JWT-----"

// maxNATSFile bounds what Validate reads of a [nats] file: credentials,
// seeds and certificate bundles are a few KiB.
const maxNATSFile = 1 << 20

// readNATSFile reads the file named by field, adding a problem (and
// returning nil) when it cannot be read; its contents never appear in a
// problem.
func readNATSFile(p *problems, field, path string) []byte {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.add(field, "%q does not exist", path)
		return nil
	case err != nil:
		p.add(field, "%q cannot be read: %v", path, errors.Unwrap(err))
		return nil
	case st.IsDir():
		p.add(field, "%q is a directory, not a file", path)
		return nil
	case st.Size() > maxNATSFile:
		p.add(field, "%q is larger than 1 MiB (%d bytes): not a credentials, key or certificate file", path, st.Size())
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		p.add(field, "%q cannot be read: %v", path, errors.Unwrap(err))
		return nil
	}
	return b
}

// hasUserSeed reports whether b holds a user nkey seed (a 58-character
// word starting "SU"), alone or decorated.
func hasUserSeed(b []byte) bool {
	for _, w := range strings.Fields(string(b)) {
		if len(w) == 58 && strings.HasPrefix(w, "SU") {
			return true
		}
	}
	return false
}

// checkCredentialsFile checks nats.credentials_file: a .creds file with a
// user JWT. nats.go sends whatever it finds first as the JWT, a plain seed
// included, and the server only answers "Authorization Violation".
func checkCredentialsFile(p *problems, path string) {
	if path == "" {
		return
	}
	const field = "nats.credentials_file"
	b := readNATSFile(p, field, path)
	switch {
	case b == nil:
	case bytes.Contains(b, []byte(natsUserJWTBlock)):
	case hasUserSeed(b):
		p.add(field, "%q holds an nkey seed but no user JWT (%s): a plain nkey is nats.nkey_seed_file; a .creds file comes from `nsc generate creds`", path, natsUserJWTBlock)
	default:
		p.add(field, "%q holds no user JWT (%s): not a .creds file", path, natsUserJWTBlock)
	}
}

// checkSeedFile checks nats.nkey_seed_file: a file with a user nkey seed.
func checkSeedFile(p *problems, path string) {
	if path == "" {
		return
	}
	const field = "nats.nkey_seed_file"
	if b := readNATSFile(p, field, path); b != nil && !hasUserSeed(b) {
		p.add(field, "%q holds no user nkey seed (a 58-character word starting \"SU\", from `nk -gen user`)", path)
	}
}

// checkPEMFile checks that a TLS file is readable and holds a PEM block
// whose type ends with kind (CERTIFICATE, PRIVATE KEY).
func checkPEMFile(p *problems, field, path, kind string) {
	if path == "" {
		return
	}
	b := readNATSFile(p, field, path)
	if b == nil {
		return
	}
	if !bytes.Contains(b, []byte("-----BEGIN ")) || !bytes.Contains(b, []byte(kind+"-----")) {
		p.add(field, "%q holds no PEM %s block", path, kind)
	}
}
