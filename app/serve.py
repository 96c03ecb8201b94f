"""The app as an ASGI application (Streamlit's `st.App`), so that the server sets the browser-id cookie HttpOnly
(`app.browser_cookie`); everything else is app/main.py, unchanged:

    streamlit run app/serve.py --server.address 127.0.0.1     # instead of `streamlit run app/main.py`
"""
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from spinescope.app.browser_cookie import BrowserIdCookie

app = st.App(Path(__file__).with_name("main.py"), middleware=[Middleware(BrowserIdCookie)])
