"""Role names the kernel needs (authentication marks admins); catalog builds its access rules on them."""
ADMINS_TEAM = "Admins"  # members of the team with this name are admins, like superusers
