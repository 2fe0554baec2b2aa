DROP TABLE api_tokens;
DROP TABLE user_roles;
DROP TABLE users;
DROP TABLE role_permissions;
DROP TABLE permissions;
DROP TABLE roles;
