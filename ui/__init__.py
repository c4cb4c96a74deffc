"""The Streamlit app (`streamlit run ui/app.py`) and its pages (`ui/views/`)."""
