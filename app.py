"""Video XAI workbench: `streamlit run app.py`.

Each page draws the shared sidebar (model, clip, device) itself through workbench.sidebar, lays
out its widgets and calls xai_core and workbench; selections live in st.session_state under
widget keys, so they survive reruns.
"""

import streamlit as st

page = st.navigation(
    [
        st.Page("pages/explain.py", title="Explain", icon=":material/visibility:", default=True),
        st.Page("pages/temporal.py", title="Temporal", icon=":material/timeline:"),
        st.Page("pages/motion.py", title="Motion", icon=":material/animation:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
        st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
    ]
)
page.run()
