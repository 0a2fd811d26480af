package httpapi

import (
	"net/http"
	"strconv"

	"github.com/latchkey-dev/latchkey"
)

// UserPage is a page of the admin user list.
type UserPage struct {
	Items []UserJSON `json:"items"`
	Total int        `json:"total"`
	Page  int        `json:"page"`
	Size  int        `json:"size"`
}

func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &latchkey.ValidationError{Field: name, Reason: "must be an integer from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi)}
	}
	return n, nil
}

// adminListUsers pages through users: ?page=1&size=50&email=substring.
func (s *Server) adminListUsers(w http.ResponseWriter, r *http.Request) error {
	page, err := queryInt(r, "page", 1, 1, 1_000_000)
	if err != nil {
		return err
	}
	size, err := queryInt(r, "size", 50, 1, 200)
	if err != nil {
		return err
	}
	us, total, err := s.e.ListUsers(r.Context(), latchkey.UserQuery{Email: r.URL.Query().Get("email"),
		Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return err
	}
	out := UserPage{Items: make([]UserJSON, 0, len(us)), Total: total, Page: page, Size: size}
	for _, u := range us {
		out.Items = append(out.Items, userJSON(u))
	}
	return writeJSON(w, http.StatusOK, out)
}

type adminCreateRequest struct {
	Email      string        `json:"email"`
	Password   string        `json:"password"`
	FullName   string        `json:"full_name"`
	Role       latchkey.Role `json:"role"`
	IsVerified bool          `json:"is_verified"`
}

func (s *Server) adminCreateUser(w http.ResponseWriter, r *http.Request) error {
	var req adminCreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	u, err := s.e.Register(r.Context(), latchkey.NewUser{Email: req.Email, Password: req.Password,
		FullName: req.FullName, Role: req.Role, IsVerified: req.IsVerified})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/admin/users/"+u.ID.String())
	return writeJSON(w, http.StatusCreated, userJSON(u))
}

func (s *Server) adminGetUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := s.e.User(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, userJSON(u))
}

type adminPatchRequest struct {
	Role     *latchkey.Role `json:"role"`
	IsActive *bool          `json:"is_active"`
	FullName *string        `json:"full_name"`
}

var errSelf = errorf(http.StatusConflict, "self_modification", "Admins cannot demote, deactivate or delete themselves")

// adminPatchUser changes role, activity and name. Deactivation ends the
// user's sessions at once; a role change bumps the token version, so a
// demoted admin loses admin access at once.
func (s *Server) adminPatchUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req adminPatchRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Role != nil && !req.Role.Valid() {
		return &latchkey.ValidationError{Field: "role", Reason: `must be "user" or "admin"`}
	}
	me := principalFrom(r.Context()).User
	if id == me.ID && ((req.Role != nil && *req.Role != latchkey.RoleAdmin) || (req.IsActive != nil && !*req.IsActive)) {
		return errSelf
	}
	u, err := s.e.User(r.Context(), id)
	if err != nil {
		return err
	}
	if req.FullName != nil {
		if u, err = s.e.UpdateProfile(r.Context(), id, *req.FullName); err != nil {
			return err
		}
	}
	if req.Role != nil && *req.Role != u.Role {
		if u, err = s.e.SetRole(r.Context(), id, *req.Role); err != nil {
			return err
		}
	}
	if req.IsActive != nil && *req.IsActive != u.IsActive {
		if u, err = s.e.SetActive(r.Context(), id, *req.IsActive); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, userJSON(u))
}

func (s *Server) adminDeleteUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if id == principalFrom(r.Context()).User.ID {
		return errSelf
	}
	if err := s.e.DeleteUser(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
