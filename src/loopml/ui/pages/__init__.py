"""The pages of the UI, one module per section; each has a `router` that `loopml.ui.app.PAGES` lists."""
