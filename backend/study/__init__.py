"""The user study of report §6: building studies, serving participants, results and exports."""
