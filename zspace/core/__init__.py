"""Infrastructure every stage shares: errors, files, checks, progress, resources, devices."""
