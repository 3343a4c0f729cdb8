-- The first-start administrator setup link is now an admin invitation (table invitations,
-- created_by 'setup'); its old table goes.
DROP TABLE admin_setup_tokens;
