"""Course labs that run students' code on the emulated machine (``hwsim lab``): the page-fault lab."""
