package httpapi

import (
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey"
)

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	FullName string `json:"full_name"`
}

// register creates an account (201). The account registered with the
// configured admin email becomes an admin, as in the original service.
func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	var req registerRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.limit(r.Context(), check("register_ip", s.limits.RegisterPerIP, rateKeyIP(s.clientIP(r))),
		check("register_account", s.limits.RegisterPerAccount, strings.ToLower(strings.TrimSpace(req.Email)))); err != nil {
		return err
	}
	// The admin email is compared in the engine's canonical form, byte for
	// byte: strings.EqualFold would let a look-alike such as "ſ" for "s"
	// register a second admin.
	role := latchkey.RoleUser
	if s.opts.AdminEmail != "" {
		want, err1 := latchkey.NormalizeEmail(s.opts.AdminEmail)
		got, err2 := latchkey.NormalizeEmail(req.Email)
		if err1 == nil && err2 == nil && got == want {
			role = latchkey.RoleAdmin
		}
	}
	u, err := s.e.Register(r.Context(), latchkey.NewUser{Email: req.Email, Password: req.Password, FullName: req.FullName, Role: role})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/users/"+u.ID.String())
	return writeJSON(w, http.StatusCreated, userJSON(u))
}

// getUser shows a user to itself or to an admin; to anyone else it does not
// exist (404), so that ids cannot be probed.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	if id != p.User.ID && p.User.Role != latchkey.RoleAdmin {
		return errNotFound
	}
	u, err := s.e.User(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, userJSON(u))
}

type patchMeRequest struct {
	FullName        *string `json:"full_name"`
	Email           *string `json:"email"`
	CurrentPassword string  `json:"current_password"`
}

// patchMe changes the caller's name and, with the current password, email.
func (s *Server) patchMe(w http.ResponseWriter, r *http.Request) error {
	var req patchMeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	p := principalFrom(r.Context())
	if req.Email != nil {
		if err := s.limitPasswordCheck(r, p); err != nil {
			return err
		}
	}
	u, err := s.e.UpdateAccount(r.Context(), p.User.ID, latchkey.AccountUpdate{FullName: req.FullName,
		Email: req.Email, CurrentPassword: req.CurrentPassword})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, userJSON(u))
}
