-- Applications restricted to groups: only members of one of these groups (ids, a JSON array)
-- may sign in to them. Empty: everyone.
ALTER TABLE clients ADD COLUMN allowed_groups TEXT NOT NULL DEFAULT '[]';
