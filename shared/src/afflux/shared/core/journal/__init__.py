"""The commission journal: postings decided batch by batch (DESIGN §4)."""
