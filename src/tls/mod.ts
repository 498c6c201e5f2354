/** placeholder: see ARCHITECTURE.md */
