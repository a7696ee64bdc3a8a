# Shortcuts for those who have make; course.py does the work and needs only Python.
PYTHON ?= python3

.PHONY: lab test notebooks setup
lab test notebooks setup:
	$(PYTHON) course.py $@
