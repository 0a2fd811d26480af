package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// keysHelpTail is what every keys command says about the master key and
// running servers.
var keysHelpTail = `
The master key comes from --master-key-file, LATCHKEY_MASTER_KEY or the key
file 'latchkey serve' created for the database; keys commands never create
a key file. Running servers reread the keys every ` + keyReloadInterval.String() + `.`

func keysListCommand() *command {
	return &command{
		name:    "keys list",
		summary: "list the signing, rotation and tag keys",
		help: `List the keys stored in the database, one per line: id, purpose, algorithm,
sequence number within the purpose, when it was created, when it became or
becomes active, whether it is the one in use now (CURRENT), whether a
signing key is in /.well-known/jwks.json now (PUBLISHED: keys about to be
used, the current one, and retired ones whose access tokens may still be
live, for one --access-ttl), and when it was revoked. Times are UTC.
` + keysHelpTail,
		options: []option{databaseOption, masterKeyOption, withUsage(accessTTLOption,
			`Lifetime of access tokens, as serve runs with: a retired signing key stays
published this long after it is superseded.`)},
		run: runKeysList,
	}
}

func keysRotateCommand() *command {
	return &command{
		name:    "keys rotate",
		summary: "add a new signing, rotation or tag key",
		help: `Add a new key of --purpose and print its id and when it becomes active.

A new signing key is published in the JWKS at once and signs access tokens
from ` + keyPublishLeadText() + ` later, so that every server and every JWKS cache has it
before the first token signed with it arrives; older keys stay published
while their tokens may be live. A new tag key likewise tags refresh tokens
from ` + keyPublishLeadText() + ` later. A new rotation key is used at once for sessions
opened from then on; sessions keep the rotation key they started with.
Nothing is revoked: use 'latchkey keys revoke' for a key that leaked.
` + keysHelpTail,
		options: []option{
			{name: "purpose", arg: "PURPOSE", def: "signing",
				usage: "signing, rotation or tag."},
			databaseOption, masterKeyOption,
		},
		run: runKeysRotate,
	}
}

func keysRevokeCommand() *command {
	return &command{
		name:    "keys revoke",
		summary: "withdraw a key at once (a key that leaked)",
		args:    "ID",
		help: `Revoke the key ID (as 'latchkey keys list' shows it) at once and say what
that did. A signing key leaves the JWKS and the access tokens it signed stop
verifying. A rotation key ends every session whose refresh tokens it derives
(reason key_compromised): their users sign in again. A tag key makes every
refresh token it tagged unverifiable. When the key was the last usable one
of its purpose, a replacement is created and used at once.

An unknown or already revoked ID exits with status 1.
` + keysHelpTail,
		options: []option{databaseOption, masterKeyOption},
		run:     runKeysRevoke,
	}
}

// defaultKeyPublishLead is latchkey.Config's default KeyPublishLead, which
// the CLI does not change (a test checks that the two agree).
const defaultKeyPublishLead = latchkey.DefaultKeyPublishLead

// keyPublishLeadText is defaultKeyPublishLead as the help writes it.
func keyPublishLeadText() string {
	return fmt.Sprintf("%d minutes", int(defaultKeyPublishLead/time.Minute))
}

// withUsage returns o with other help text.
func withUsage(o option, usage string) option {
	o.usage = usage
	return o
}

func runKeysList(ctx context.Context, m *Main, s *settings) error {
	ttl, err := s.positiveDuration("access-ttl")
	if err != nil {
		return err
	}
	e, err := openEngine(ctx, m, s, engineOptions{accessTTL: ttl})
	if err != nil {
		return err
	}
	keys, err := e.Keys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPURPOSE\tALGORITHM\tSEQ\tCREATED\tACTIVE FROM\tCURRENT\tPUBLISHED\tREVOKED")
	for _, k := range keys {
		published := "-" // only signing keys are published
		if k.Purpose == latchkey.KeySigning {
			published = yesNo(k.Published)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Purpose, k.Algorithm, k.Seq,
			utc(k.CreatedAt), utc(k.ActivateAt), yesNo(k.Current), published, utc(k.RevokedAt))
	}
	return tw.Flush()
}

func runKeysRotate(ctx context.Context, m *Main, s *settings) error {
	purpose := latchkey.KeyPurpose(s.string("purpose"))
	if !slices.Contains([]latchkey.KeyPurpose{latchkey.KeySigning, latchkey.KeyRotation, latchkey.KeyTag}, purpose) {
		return usagef("invalid --purpose %q: want signing, rotation or tag", purpose)
	}
	e, err := openEngine(ctx, m, s, engineOptions{})
	if err != nil {
		return err
	}
	k, err := e.RotateKey(ctx, purpose)
	if err != nil {
		return err
	}
	when := "now"
	if d := k.ActivateAt.Sub(k.CreatedAt); d > 0 {
		when = "in " + d.String()
	}
	var what string
	switch purpose {
	case latchkey.KeySigning:
		what = "published in the JWKS now, signs access tokens from then on"
	case latchkey.KeyRotation:
		what = "sessions opened from then on use it"
	case latchkey.KeyTag:
		what = "tags refresh tokens issued from then on"
	}
	fmt.Fprintf(m.Stdout, "created %s key %s (seq %d), active from %s (%s); %s\n",
		purpose, k.ID, k.Seq, utc(k.ActivateAt), when, what)
	return nil
}

func runKeysRevoke(ctx context.Context, m *Main, s *settings) error {
	id := s.args[0]
	e, err := openEngine(ctx, m, s, engineOptions{})
	if err != nil {
		return err
	}
	before, err := e.Keys(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(before, func(k latchkey.KeyInfo) bool { return k.ID == id })
	if i < 0 {
		return fmt.Errorf("no such key %s (see 'latchkey keys list')", id)
	}
	target := before[i]
	if !target.RevokedAt.IsZero() {
		return fmt.Errorf("key %s was already revoked at %s", id, utc(target.RevokedAt))
	}
	ended, err := e.RevokeKey(ctx, id)
	if errors.Is(err, latchkey.ErrNotFound) {
		// Revoked by someone else between the list and now.
		return fmt.Errorf("no such key %s, or it was revoked meanwhile", id)
	}
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "revoked %s key %s", target.Purpose, id)
	switch target.Purpose {
	case latchkey.KeySigning:
		b.WriteString(": it left the JWKS and the access tokens it signed no longer verify")
	case latchkey.KeyRotation:
		fmt.Fprintf(&b, ": %d sessions ended (reason key_compromised)", ended)
	case latchkey.KeyTag:
		b.WriteString(": the refresh tokens it tagged no longer verify")
	}
	// RevokeKey replaces the last usable key of a purpose; say so, since
	// the operator may be looking for the new id.
	after, err := e.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range after {
		if k.Purpose == target.Purpose && !slices.ContainsFunc(before, func(o latchkey.KeyInfo) bool { return o.ID == k.ID }) {
			fmt.Fprintf(&b, "; replaced by %s, active now", k.ID)
		}
	}
	fmt.Fprintf(&b, "; running servers reload keys within %s", keyReloadInterval)
	fmt.Fprintln(m.Stdout, b.String())
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// utc formats t for people and scripts alike: RFC 3339 in UTC, or "-" for
// the zero time.
func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
