"""`movierec audit`: what responsible operation watches, as figures — fairness per user
group, exposure of the long tail and of new releases, the feedback loop's concentration,
attacks on the model (shilling campaigns, scraping), and safety (adult movies shown to
minors). Reads the store, the catalogue cache, the registry and the answer log; changes
nothing. See docs/responsible.md."""
