// Package latchkey is an authentication engine built around rotating opaque
// refresh tokens with sessions (token families) and reuse detection.
//
// Users sign in with email and password (Engine.Login) and receive a
// short-lived JWT access token and a refresh token. Each refresh token is good
// for one rotation (Engine.Refresh); presenting a spent one again outside a
// short grace window is treated as theft and ends the whole session (RFC 9700
// §4.14). A session is one row however often it rotates; its secrets form a
// keyed chain, so neither the database nor an old token yields a working
// token without the rotation key, which is stored encrypted under a master
// key the database never sees.
//
// The engine decides and a Store persists: store/sqlite is the embedded
// default and store/storetest the conformance suite every backend passes.
// The package has no net/http dependency; package httpapi serves it.
package latchkey
