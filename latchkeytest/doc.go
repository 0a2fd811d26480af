// Package latchkeytest is Latchkey's test kit, in the manner of
// net/http/httptest: an engine on a temporary SQLite file with a clock you
// control, and factories for users and refresh tokens that go through the
// engine's own code, so that a factory token behaves exactly like an issued
// one. Every helper takes a testing.TB, marks itself a helper and cleans up
// after the test; all are safe to use from parallel tests.
//
// It grew out of a FastAPI service's conftest.py. The original factory and
// fixtures map onto it option for option:
//
//	Python (conftest.py)                                     Go (latchkeytest)
//	UserFactory.create(session)                              NewUser(t, e)
//	UserFactory.create(session, email="a@b.c")               NewUser(t, e, Email("a@b.c"))
//	UserFactory.create(session, role="admin")                NewUser(t, e, Admin())
//	UserFactory.create(session, is_active=False)             NewUser(t, e, Inactive())
//	RefreshTokenFactory.create(session, user)                NewRefreshToken(t, e, u)
//	  -> (row, raw_token)                                      -> (*latchkey.Session, string)
//	RefreshTokenFactory.create(session, user,                NewRefreshToken(t, e, u, Revoked())
//	    is_revoked=True)
//	RefreshTokenFactory.create(session, user,                NewRefreshToken(t, e, u, ExpiresIn(-24*time.Hour))
//	    expires_delta=timedelta(days=-1))
//	RefreshTokenFactory.create(session, user,                NewRefreshToken(t, e, u, ExpiresIn(7*24*time.Hour))
//	    expires_delta=timedelta(days=7))   # the default
//	fixture refresh_token_pair                               NewRefreshToken(t, e, u)
//	fixture expired_refresh_token_pair                       NewRefreshToken(t, e, u, ExpiresIn(-24*time.Hour))
//	fixture revoked_refresh_token_pair                       NewRefreshToken(t, e, u, Revoked())
//
// New here, with no Python counterpart: Rotated(n) for a session that has
// already rotated n times (its spent tokens, from SpentTokens, count as
// reuse), Mobile() for a mobile-mode session, and WithDevice for the client's
// user agent and device id.
//
// The original stored sha256(token) in a row per token; Latchkey stores one
// row per session and a keyed chain of secrets, so the Session returned here
// holds the hash of the current secret, not of the raw string.
package latchkeytest
