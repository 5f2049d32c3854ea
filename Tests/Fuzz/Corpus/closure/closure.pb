
piabc
AB