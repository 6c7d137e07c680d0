"""Silence from the chat: buttons under an alert whose signed links silence the job.

`settings` reads the config's `actions:` section, `links` signs and checks the links
and makes the buttons, `http` reads FC 3.0's HTTP trigger events, `serve` answers a
click (creating the silence once), `page` writes the small HTML pages it answers with.
Only `http` is imported on a timer tick: the rest loads when a link is opened.
"""
