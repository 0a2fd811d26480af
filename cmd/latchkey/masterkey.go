package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/latchkey-dev/latchkey"
)

// masterKeyHint tells the operator how to make a key; it is appended to
// every "bad key" message.
const masterKeyHint = "want 32 random bytes in base64 (standard or URL alphabet), such as the output of 'openssl rand -base64 32'"

// maxKeyFileSize bounds what is read from a key or secret file: base64 of
// 32 bytes with a newline is 45 bytes.
const maxKeyFileSize = 1 << 10

// decodeMasterKey decodes a base64 master key in the standard or URL
// alphabet, padded or not, ignoring surrounding white space (a trailing
// newline in a file or a variable). Its errors never contain the input.
func decodeMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != latchkey.MasterKeySize {
				return nil, fmt.Errorf("decodes to %d bytes, not %d", len(k), latchkey.MasterKeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("not base64")
}

// readKeyFile reads a master key file. A missing file yields an error
// matching fs.ErrNotExist; content that is not a key yields a *usageError.
func readKeyFile(path string) ([]byte, error) {
	b, err := readSecretFile(path, "master key file")
	if err != nil {
		return nil, err
	}
	k, err := decodeMasterKey(string(b))
	if err != nil {
		return nil, usagef("invalid master key file %s: %v; %s", path, err, masterKeyHint)
	}
	return k, nil
}

// readSecretFile reads a small file holding a secret; what names it in
// errors ("master key file"). It refuses a file that group or others can
// access, as ssh does for private keys: the master key protects every
// signing and token key in the database. A missing file yields an error
// matching fs.ErrNotExist; a file over 1 KiB, a *usageError. Errors never
// contain the content.
func readSecretFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	// Stat the open file, not the path, so that the mode checked is the mode
	// of the file read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	}
	// Windows has no Unix permission bits; its ACLs are left to the operator.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s is accessible by group or others (mode %#o); restrict it with: chmod 600 %s",
			what, path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(b) > maxKeyFileSize {
		return nil, usagef("invalid %s %s: larger than %d bytes", what, path, maxKeyFileSize)
	}
	return b, nil
}

// keyFilePath names the key file kept for the SQLite database at dbPath: in
// the user's configuration directory, not beside the database, so that one
// backup of the database directory does not hold both the keys and the key
// that decrypts them. The name carries the database's base name, for people,
// and a hash of its absolute path, so that two databases of the same name get
// different keys.
func keyFilePath(dbPath string) (string, error) {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return "", fmt.Errorf("database path %s: %w", dbPath, err)
	}
	// Resolve symlinks in the directory (which exists once the store is
	// open) so that /var/x.db and /private/var/x.db on macOS share a key.
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(dir, filepath.Base(abs))
	}
	conf, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no master key given and no user configuration directory to keep one in (%v); set LATCHKEY_MASTER_KEY or --master-key-file", err)
	}
	sum := sha256.Sum256([]byte(abs))
	base := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	return filepath.Join(conf, "latchkey", fmt.Sprintf("%s-%x.key", base, sum[:4])), nil
}

// loadOrCreateKeyFile returns the master key kept in the key file of the
// SQLite database at dbPath, creating the file (mode 0600, in a 0700
// directory) when it does not exist and the database holds no keys yet.
// created reports whether this call made the file.
func loadOrCreateKeyFile(ctx context.Context, store latchkey.Store, dbPath string) (key []byte, path string, created bool, err error) {
	path, err = keyFilePath(dbPath)
	if err != nil {
		return nil, "", false, err
	}
	key, err = readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, path, false, err
	}
	// A database that already holds keys was sealed with a key we do not
	// have: a new one could not open it, and writing one would leave behind
	// a file that looks right and is not.
	recs, err := store.Keys(ctx)
	if err != nil {
		return nil, "", false, err
	}
	if len(recs) > 0 {
		return nil, "", false, fmt.Errorf("no master key given and %s does not exist, but %s already holds keys sealed with one; "+
			"set LATCHKEY_MASTER_KEY or --master-key-file to the key this database was created with", path, dbPath)
	}
	key = make([]byte, latchkey.MasterKeySize)
	rand.Read(key)
	if err := publishKeyFile(path, key); errors.Is(err, fs.ErrExist) {
		// Another instance started on the same database at the same moment
		// and published its key first; use that one.
		key, err = readKeyFile(path)
		return key, path, false, err
	} else if err != nil {
		return nil, "", false, err
	}
	return key, path, true, nil
}

// publishKeyFile writes key to path only if path does not exist, and never
// leaves a partial file there: the key is written and synced under a
// temporary name and then hard-linked into place, which fails with
// fs.ErrExist if another process got there first.
func publishKeyFile(path string, key []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create master key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*.key") // mode 0600
	if err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("create master key file: %w", err)
	}
	// The database is about to hold keys sealed with this key; make sure the
	// file's name survives a power failure too.
	if runtime.GOOS != "windows" {
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}
