"""Where media comes from: watch folders, growing files, tethered cameras."""
