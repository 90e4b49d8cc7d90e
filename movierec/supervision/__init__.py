"""Child processes kept running: started in order, restarted after a crash, stopped in order."""
