"""The Streamlit app's own package: what the pages share.

Session state and the sidebar's selection (``state``, ``sidebar``), cached loaders and results
(``caches``), the session's own models and training run (``user_models``, ``model_upload``,
``training``), widgets (``widgets``), background jobs (``jobs``), the Temporal page's run store
(``runs``), the sanity-survival lookup (``sanity``) and the Models page's tables and figures
(``figures``).  Streamlit lives here and in pages/; the library, ``xai_core``, imports neither.
"""
