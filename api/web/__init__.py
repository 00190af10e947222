"""The HTML pages: accounts, the authorize page and the authorized-applications page."""
